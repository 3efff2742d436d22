"""Classification metrics as the thesis reports them: OACC, per-class sensitivity and specificity.

Confusion matrix rows are the true class, columns the predicted class, both in
``class_ids`` order. For class c: sensitivity = TP / (TP + FN) (recall), specificity =
TN / (TN + FP); either is ``None`` when its denominator is 0 (no such pixels),
never NaN, so the dict is valid JSON.
"""
from __future__ import annotations

import numpy as np

from core.classes import CLASS_IDS

TUMOUR_ID = 2


def confusion_matrix(true_index: np.ndarray, pred_index: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``int64 (C, C)``, ``[i, j]`` = samples of true class index i predicted as j."""
    true_index = np.asarray(true_index).reshape(-1)
    pred_index = np.asarray(pred_index).reshape(-1)
    if true_index.shape != pred_index.shape:
        raise ValueError(f"{true_index.shape[0]} true labels but {pred_index.shape[0]} predictions")
    for name, values in (("true", true_index), ("predicted", pred_index)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} class indices must lie in 0..{n_classes - 1}")
    flat = true_index.astype(np.int64) * n_classes + pred_index.astype(np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num) / float(den)


def metrics_from_confusion(
    matrix: np.ndarray, class_ids: tuple[int, ...] = CLASS_IDS, class_names: tuple[str, ...] | None = None
) -> dict:
    """JSON-ready metrics of a confusion matrix ``(C, C)``.

    Keys: ``oacc`` (overall accuracy, trace / total), ``n`` (samples), ``class_ids``,
    ``class_names``, ``support`` (true samples per class), ``sensitivity`` and
    ``specificity`` (lists in class order, None where undefined), ``tumour_sensitivity``
    (None when there is no tumour class or no tumour sample) and ``confusion`` (nested lists).
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    c = len(class_ids)
    if matrix.shape != (c, c):
        raise ValueError(f"confusion matrix {matrix.shape} does not match {c} classes")
    if class_names is None:
        class_names = tuple(str(i) for i in class_ids)
    total = int(matrix.sum())
    tp = np.diag(matrix)
    fn = matrix.sum(axis=1) - tp
    fp = matrix.sum(axis=0) - tp
    tn = total - tp - fn - fp
    sensitivity = [_ratio(tp[i], tp[i] + fn[i]) for i in range(c)]
    specificity = [_ratio(tn[i], tn[i] + fp[i]) for i in range(c)]
    tumour = class_ids.index(TUMOUR_ID) if TUMOUR_ID in class_ids else None
    return {
        "oacc": _ratio(int(tp.sum()), total),
        "n": total,
        "class_ids": list(class_ids),
        "class_names": list(class_names),
        "support": matrix.sum(axis=1).tolist(),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "tumour_sensitivity": None if tumour is None else sensitivity[tumour],
        "confusion": matrix.tolist(),
    }


def classification_metrics(
    true_index: np.ndarray,
    pred_index: np.ndarray,
    class_ids: tuple[int, ...] = CLASS_IDS,
    class_names: tuple[str, ...] | None = None,
) -> dict:
    """:func:`metrics_from_confusion` of class indices (0..C-1) ``(N,)``."""
    return metrics_from_confusion(confusion_matrix(true_index, pred_index, len(class_ids)), class_ids, class_names)


def oacc(true_index: np.ndarray, pred_index: np.ndarray) -> float | None:
    """Overall accuracy (fraction of samples predicted correctly); None for no samples."""
    true_index, pred_index = np.asarray(true_index), np.asarray(pred_index)
    if true_index.shape != pred_index.shape:
        raise ValueError(f"{true_index.size} true labels but {pred_index.size} predictions")
    return _ratio(int((true_index == pred_index).sum()), true_index.size)


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def format_metrics_table(metrics: dict, *, title: str | None = None) -> str:
    """A readable text table: per-class support, sensitivity, specificity, then the confusion matrix."""
    names = metrics["class_names"]
    width = max(12, *(len(n) for n in names))
    lines = [] if title is None else [title]
    lines.append(f"OACC {_fmt(metrics['oacc']).strip()}   tumour sensitivity "
                 f"{_fmt(metrics['tumour_sensitivity']).strip()}   n = {metrics['n']}")
    lines.append(f"{'class':<{width}}  {'n':>7}  {'sens.':>6}  {'spec.':>6}")
    for i, name in enumerate(names):
        lines.append(
            f"{name:<{width}}  {metrics['support'][i]:>7}  {_fmt(metrics['sensitivity'][i])}  "
            f"{_fmt(metrics['specificity'][i])}"
        )
    short = [n[:8] for n in names]
    lines.append("confusion (rows true, columns predicted)")
    lines.append(f"{'':<{width}}  " + "  ".join(f"{s:>8}" for s in short))
    for name, row in zip(names, metrics["confusion"]):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>8}" for v in row))
    return "\n".join(lines)


def per_class_scores(matrix: np.ndarray, class_names) -> tuple[dict, float | None]:
    """``({name: {recall, precision, f1, n}}, macro_f1)`` of a confusion matrix ``(C, C)``.

    ``n`` is the class's true pixels; recall, precision and F1 are None where undefined
    (no true pixels; never predicted). Macro F1 is the mean F1 over the classes with
    true pixels (a class absent from a held-out patient neither helps nor hurts it; a
    present class never predicted counts 0); None when there are none.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    tp = np.diag(matrix)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    scores, f1s = {}, []
    for i, name in enumerate(class_names):
        recall = _ratio(tp[i], support[i])
        precision = _ratio(tp[i], predicted[i])
        if recall is None:
            f1 = None
        elif not precision or not recall:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        if support[i]:
            f1s.append(f1)
        scores[str(name)] = {"recall": recall, "precision": precision, "f1": f1, "n": int(support[i])}
    return scores, (float(np.mean(f1s)) if f1s else None)
