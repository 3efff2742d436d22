"""Endpoint answers are checked against the capture and the class table before use."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.model.inference import ClassificationResult
from core.model.files import ModelInfo
from remote.result_check import ResultRejected, check_result

INFO = ModelInfo(name="demo", version="1", sha256="ab" * 32, format_version=1, architecture="Conv2DNet",
                 patch_size=7, n_bands=25, padding="reflect", class_ids=(1, 2, 3, 4, 5),
                 class_names=("h", "t", "v", "a", "d"), profile_id="p", created="2024-01-01T00:00:00Z")


def answer(shape=(20, 30), *, info=INFO, fill=2, channels=5):
    labels = np.full(shape, fill, np.uint8)
    probabilities = np.zeros((*shape, channels), np.float32)
    return ClassificationResult(labels, probabilities, np.zeros((*shape, 3), np.uint8), info, source="https://e/score")


def test_a_fitting_answer_passes():
    check_result(answer(), cube_shape=(20, 30))
    check_result(answer(channels=0), cube_shape=(20, 30))  # probabilities not requested


@pytest.mark.parametrize(
    "result, match",
    [
        (answer((10, 10)), r"shape \(10, 10\) differs from the capture's cube \(20, 30\)"),
        (answer(fill=9), r"class ids \[9\] are not in the model's table"),
        (answer(info=dataclasses.replace(INFO, sha256="")), "no model identity"),
        (answer(info=None), "no model identity"),
        (answer(info=dataclasses.replace(INFO, class_ids=(1, 2, 3, 4, 17))), r"class ids \[17\]"),
        (answer(channels=3), "probabilities shape"),
    ],
)
def test_rejections_name_the_problem(result, match):
    with pytest.raises(ResultRejected, match=match) as caught:
        check_result(result, cube_shape=(20, 30), url="https://e/score")
    assert "https://e/score" in str(caught.value) and isinstance(caught.value, ValueError)


def test_explicit_table_narrows_the_allowed_ids():
    with pytest.raises(ResultRejected, match=r"\[2\]"):
        check_result(answer(fill=2), cube_shape=(20, 30), class_ids=(1, 3))
