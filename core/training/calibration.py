"""Temperature scaling (Guo et al., 2017) and the expected calibration error.

A network trained with cross-entropy is often over-confident: its softmax says 0.99 where it
is right 80 % of the time. Temperature scaling divides the logits by one scalar ``T > 0``
fitted to minimise the negative log-likelihood on held-out validation data; ``T > 1``
softens, ``T < 1`` sharpens. Dividing by a positive scalar never changes the argmax, so the
label map is the same, only the probabilities (and so the uncertainty) change.

Shapes: ``logits`` float ``(N, C)``; ``targets`` int ``(N,)`` class indices ``0..C-1``
(indices into the model's ``class_ids``, not the ids themselves); ``probs`` ``(N, C)``.
"""
from __future__ import annotations

import math

import numpy as np

# Bounds of the fitted temperature: outside them the validation set is degenerate (all
# right or all wrong), and an extreme T would make every map look certain or random.
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 20.0
ECE_BINS = 15  # equal-width confidence bins, as Guo et al.


def _check(logits: np.ndarray, targets: np.ndarray, name: str = "logits") -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"{name} must be (N, C) with C >= 2, got shape {logits.shape}")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"targets must be ({logits.shape[0]},), got shape {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(f"targets must be class indices 0..{logits.shape[1] - 1}")
    if not np.isfinite(logits).all():
        raise ValueError(f"{name} hold NaN or infinite values")
    return logits, targets.astype(np.int64)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` over the last axis (any leading shape), float64."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of ``targets`` under ``softmax(logits / temperature)``."""
    logits, targets = _check(logits, targets)
    if targets.size == 0:
        raise ValueError("no samples")
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(z.shape[0]), targets]))


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising :func:`nll` on validation ``logits`` / ``targets``, in [0.05, 20].

    One-dimensional and convex in ``log T`` (the NLL of a softmax is convex in ``1/T``), so a
    bounded scalar search finds the optimum. ``ValueError`` for empty or malformed input.
    """
    from scipy.optimize import minimize_scalar

    logits, targets = _check(logits, targets)
    if targets.size == 0:
        raise ValueError("cannot fit a temperature on no validation samples")
    found = minimize_scalar(
        lambda log_t: nll(logits, targets, math.exp(log_t)),
        bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(min(max(math.exp(found.x), MIN_TEMPERATURE), MAX_TEMPERATURE))


def ece(probs: np.ndarray, targets: np.ndarray, *, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over confidence bins of ``share * |accuracy - mean confidence|``.

    Confidence is the top probability; ``n_bins`` equal-width bins over (0, 1]. In [0, 1];
    0 for a perfectly calibrated model.
    """
    probs, targets = _check(probs, targets, "probs")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if targets.size == 0:
        raise ValueError("no samples")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    # bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 0 goes to bin 0
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / targets.size)


def calibration_report(logits: np.ndarray, targets: np.ndarray, temperature: float | None) -> dict:
    """JSON-ready calibration figures of one test set, for the evaluate report (one per fold).

    ``temperature``: the model's fitted temperature (None: not calibrated, T = 1 is used).
    Keys: ``temperature``, ``ece_uncalibrated``, ``ece`` (at the model's temperature),
    ``nll_uncalibrated``, ``nll``, ``n``.
    """
    logits, targets = _check(logits, targets)
    t = 1.0 if temperature is None else float(temperature)
    return {
        "temperature": None if temperature is None else t,
        "ece_uncalibrated": ece(softmax(logits), targets),
        "ece": ece(softmax(logits, t), targets),
        "nll_uncalibrated": nll(logits, targets),
        "nll": nll(logits, targets, t),
        "n": int(targets.size),
    }


def patch_logits(net, patches: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Logits ``float32 (N, C)`` of a patch network (``core.model.network.Conv2DNet``) on ``(N, B, p, p)`` patches."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, patches.shape[0], chunk):
            out.append(net(torch.from_numpy(np.ascontiguousarray(patches[start : start + chunk], dtype=np.float32))))
    if not out:
        return np.zeros((0, net.n_classes), dtype=np.float32)
    return torch.cat(out).numpy()
