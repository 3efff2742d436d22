"""How sure the model is of each pixel: normalised predictive entropy, ensemble disagreement, the flag.

The uncertainty of a pixel is the entropy of its (calibrated; ensemble-averaged) class
probabilities divided by ``log C``: 0 when one class has probability 1, 1 when all ``C``
classes are equally likely. For an ensemble the averaged probabilities already carry the
members' disagreement (the entropy of the mean is the members' mean entropy plus their
mutual information), so one number serves both; :func:`disagreement` gives the
mutual-information part alone for reports. Computed from the probabilities a result
already holds, so the surgeon's threshold can change without classifying again, and
remote results get the same flag as local ones.

A pixel is *uncertain* when its uncertainty exceeds the threshold. Whether the flag is
shown by default is decided by the real-data benchmark (docs/benchmarks/uncertainty.md):
flagged pixels must be wrong at least twice as often as unflagged ones.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

DEFAULT_THRESHOLD = 0.5  # uncertainty above which a pixel is flagged (the surgeon can change it)
# On: on the three public NEMESIS patients, leave one patient out, pixels above 0.5 were wrong
# 2.3-3.4 times as often as the others in every fold (2 seeds; a per-pixel network, since only
# spectra are public; docs/benchmarks/uncertainty.md). Below the product's rule of 2x the flag
# would have to be off by default.
SHOW_BY_DEFAULT = True


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float in [0, 1]; ``ValueError`` naming the bad value otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"uncertainty threshold must be a number in 0..1, got {threshold!r}")
    return float(threshold)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy ``-sum p log p / log C`` of ``probs`` ``(..., C)`` over the last axis: float32 ``(...)`` in [0, 1].

    Rows that are all zero (invalid pixels of a map) get 0. ``C == 1`` gives 0 everywhere.
    """
    probs = np.asarray(probs)
    if probs.ndim < 1 or probs.shape[-1] < 1:
        raise ValueError(f"probabilities must have a class axis, got shape {probs.shape}")
    n_classes = probs.shape[-1]
    # Class plane by class plane in float32 (a map's probabilities are float32): whole-plane
    # operations vectorise, where reductions over a last axis of 5 do not (4.4 -> ~1 ms a map).
    entropy = np.zeros(probs.shape[:-1], dtype=np.float32)
    p = np.empty_like(entropy)
    p_log_p = np.empty_like(entropy)
    for c in range(n_classes):
        np.copyto(p, probs[..., c], casting="unsafe")
        if p.size and not (p.min() >= 0):  # also False for NaN
            raise ValueError("probabilities must be finite and non-negative")
        p_log_p.fill(0.0)
        np.log(p, out=p_log_p, where=p > 0)
        np.multiply(p_log_p, p, out=p_log_p)
        entropy -= p_log_p
    if not np.isfinite(entropy).all():  # an infinite probability
        raise ValueError("probabilities must be finite and non-negative")
    if n_classes == 1:
        return np.zeros(probs.shape[:-1], dtype=np.float32)
    entropy *= np.float32(1.0 / math.log(n_classes))
    return np.clip(entropy, 0.0, 1.0, out=entropy)


def disagreement(member_probs: np.ndarray) -> np.ndarray:
    """Normalised mutual information of ensemble members ``(M, ..., C)``: float32 ``(...)`` in [0, 1].

    ``H(mean p) - mean H(p)``: 0 when every member gives the same probabilities, up to 1
    when each member is sure of a different class.
    """
    member_probs = np.asarray(member_probs)
    if member_probs.ndim < 2 or member_probs.shape[0] < 1:
        raise ValueError(f"member probabilities must be (M, ..., C), got shape {member_probs.shape}")
    total = predictive_entropy(member_probs.mean(axis=0))
    expected = predictive_entropy(member_probs).mean(axis=0)
    return np.clip(total - expected, 0.0, 1.0).astype(np.float32)


def uncertain_mask(
    probs: np.ndarray, threshold: float, valid: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """``(mask bool (H, W), fraction)``: pixels whose :func:`predictive_entropy` exceeds ``threshold``.

    ``probs`` ``(H, W, C)``; ``valid`` bool ``(H, W)`` (invalid pixels are never flagged);
    ``fraction`` is the share of valid pixels flagged (0 when none is valid).
    """
    threshold = check_threshold(threshold)
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"probabilities must be (H, W, C), got shape {probs.shape}")
    mask = predictive_entropy(probs) > threshold
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != mask.shape:
            raise ValueError(f"valid mask {valid.shape} does not match the map {mask.shape}")
        mask &= valid
        n_valid = int(valid.sum())
    else:
        n_valid = mask.size
    return mask, (float(mask.sum()) / n_valid if n_valid else 0.0)


def with_uncertainty(result, threshold: float | None):
    """``result`` (a :class:`core.model.inference.ClassificationResult`) with its uncertain-pixel flag set.

    ``threshold`` None clears the flag (``uncertain_mask`` and ``uncertain_fraction`` None), and so
    does a result without probabilities (a remote answer sent without them: ``(H, W, 0)``),
    whose uncertainty is unknown. Invalid pixels (label 0) are never flagged. ``result`` itself
    comes back when its flag is already this one (callers may compare results by identity). Cheap (a few ms for a full map): the GUI calls
    it again when the surgeon moves the threshold.
    """
    probs = np.asarray(result.probabilities)
    old = getattr(result, "uncertain_mask", None)
    if threshold is None or probs.ndim != 3 or probs.shape[-1] == 0:
        return result if old is None else replace(result, uncertain_mask=None, uncertain_fraction=None)
    cube = getattr(result, "cube", None)
    valid = cube.valid if cube is not None else result.labels != 0
    mask, fraction = uncertain_mask(probs, threshold, valid)
    if old is not None and np.array_equal(old, mask):
        return result
    return replace(result, uncertain_mask=mask, uncertain_fraction=fraction)


def default_threshold() -> float | None:
    """The threshold a result gets when nobody chose one: :data:`DEFAULT_THRESHOLD` if shown by default, else None."""
    return DEFAULT_THRESHOLD if SHOW_BY_DEFAULT else None
