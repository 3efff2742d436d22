"""Baselines of ``neurohsi evaluate --baseline``: a per-pixel linear SVM (scikit-learn).

Lives in the app layer because ``core`` takes numpy/torch/scipy only; the evaluation
(:func:`core.training.evaluation.leave_one_patient_out`) takes it as a fit/predict function.
"""
from __future__ import annotations

import numpy as np


def linear_svm(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    """Class indices of ``test_x`` (m, B) from a linear SVM fitted on ``train_x`` (n, B), ``train_y`` (n,).

    Bands are standardised on the training pixels first (an SVM's margin depends on the
    feature scale); one-vs-rest ``LinearSVC`` with scikit-learn's defaults otherwise.
    """
    try:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC
    except ImportError as exc:  # a slimmed install (the desktop bundle) may leave it out
        raise ValueError(f"--baseline needs scikit-learn, which this installation lacks ({exc})") from None

    classes = np.unique(train_y)
    if classes.size == 1:  # nothing to separate
        return np.full(len(test_x), int(classes[0]), dtype=np.int64)
    model = make_pipeline(StandardScaler(), LinearSVC(dual="auto", max_iter=5000, random_state=seed))
    model.fit(train_x, train_y)
    return model.predict(test_x).astype(np.int64)


BASELINES = {"linear_svm": linear_svm}
