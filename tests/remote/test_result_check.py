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
    if channels == 5 and fill in INFO.class_ids:
        probabilities[..., INFO.class_ids.index(fill)] = 0.6  # the labelled class is the most likely
        probabilities[..., [i for i in range(5) if INFO.class_ids[i] != fill]] = 0.1
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


def _with_probabilities(change):
    result = answer()
    probabilities = result.probabilities.copy()
    change(probabilities)
    return dataclasses.replace(result, probabilities=probabilities)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: p.__setitem__((3, 4, 0), np.nan), "NaN or infinite"),
        (lambda p: p.__setitem__((0, 0, 0), np.inf), "NaN or infinite"),
        (lambda p: p.__setitem__((0, 0, 0), -0.1), r"outside 0\.\.1"),
        (lambda p: p.__setitem__((0, 0, 0), 0.3), r"1 labelled pixel\(s\) do not sum to 1"),
        (lambda p: p.__setitem__((slice(0, 2), slice(None)), np.float32([0.6, 0.1, 0.1, 0.1, 0.1])),
         r"disagrees with its own probabilities on 60 pixel"),
    ],
)
def test_probabilities_that_are_not_a_distribution_or_disagree_with_the_labels_are_refused(change, match):
    with pytest.raises(ResultRejected, match=match):
        check_result(_with_probabilities(change), cube_shape=(20, 30))


def test_ties_and_float32_rounding_pass():
    result = answer()
    probabilities = result.probabilities.copy()
    probabilities[0, 0] = [0.5, 0.5, 0.0, 0.0, 0.0]  # labelled 2: a tie with class 1
    probabilities[1, 1] += np.float32(1e-5)
    check_result(dataclasses.replace(result, probabilities=probabilities), cube_shape=(20, 30))


def test_unlabelled_pixels_may_have_zero_probabilities():
    result = answer()
    labels = result.labels.copy()
    labels[:5] = 0
    probabilities = result.probabilities.copy()
    probabilities[:5] = 0
    check_result(dataclasses.replace(result, labels=labels, probabilities=probabilities), cube_shape=(20, 30))
