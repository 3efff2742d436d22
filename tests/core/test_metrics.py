"""Metrics: confusion matrix, OACC, sensitivity/specificity against hand-computed values."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.training.metrics import classification_metrics, confusion_matrix, format_metrics_table, oacc

TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
PRED = np.array([0, 0, 1, 1, 0, 2, 2, 1, 2, 0])


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix(TRUE, PRED, 4)
    assert cm.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 1, 3, 0], [0, 0, 0, 0]]


def test_metrics_match_hand_computation():
    m = classification_metrics(TRUE, PRED, class_ids=(1, 2, 3, 4), class_names=("h", "t", "v", "a"))
    assert m["oacc"] == pytest.approx(7 / 10) == oacc(TRUE, PRED)
    # class 0: TP 3, FN 1, FP 1, TN 5 ; class 1 (tumour, id 2): TP 1, FN 1, FP 2, TN 6
    assert m["sensitivity"][:3] == pytest.approx([3 / 4, 1 / 2, 3 / 4])
    assert m["specificity"][:3] == pytest.approx([5 / 6, 6 / 8, 6 / 6])
    assert m["tumour_sensitivity"] == pytest.approx(1 / 2)
    assert m["sensitivity"][3] is None and m["specificity"][3] == 1.0  # no true samples of class 3
    assert m["support"] == [4, 2, 4, 0]
    json.dumps(m, allow_nan=False)  # valid JSON, no NaN


def test_table_lists_classes_and_confusion():
    m = classification_metrics(TRUE, PRED, class_ids=(1, 2, 3, 4), class_names=("Healthy", "Tumour", "Venous", "Art"))
    table = format_metrics_table(m, title="demo")
    assert "OACC 0.700" in table and "Tumour" in table and "confusion" in table
    assert table.splitlines()[0] == "demo"


def test_bad_input():
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(TRUE, PRED[:-1], 3)
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(TRUE, PRED + 1, 3)
    assert oacc(np.array([]), np.array([])) is None
