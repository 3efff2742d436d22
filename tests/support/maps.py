"""Comparing class maps made on different thread counts or CPUs.

What the product guarantees (docs/benchmarks/live.md): probabilities equal within
``PROBABILITY_ATOL`` (torch's convolutions split their sums by thread count and CPU
features, so the last float32 bits may differ), labels equal except at pixels whose top
two probabilities are within that tolerance (a near-tie can go either way).
"""
from __future__ import annotations

import numpy as np

PROBABILITY_ATOL = 1e-6


def _top_two_gap(probabilities: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W): the largest probability minus the second largest."""
    top = np.sort(probabilities, axis=-1)
    return top[..., -1] - top[..., -2]


def assert_maps_agree(probs_a: np.ndarray, labels_a: np.ndarray, probs_b: np.ndarray, labels_b: np.ndarray,
                      *, atol: float = PROBABILITY_ATOL) -> None:
    """Probabilities (H, W, C) within ``atol``; labels (H, W) equal except at near-ties."""
    assert probs_a.shape == probs_b.shape and labels_a.shape == labels_b.shape
    np.testing.assert_allclose(probs_a, probs_b, rtol=0, atol=atol)
    assert_labels_agree(labels_a, labels_b, probs_a, probs_b, atol=atol)


def assert_labels_agree(labels_a: np.ndarray, labels_b: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray | None = None,
                        *, atol: float = PROBABILITY_ATOL) -> None:
    """Labels (H, W) equal wherever the top two probabilities of either map are more than ``atol`` apart."""
    differ = labels_a != labels_b
    if not differ.any():
        return
    gap = _top_two_gap(probs_a) if probs_b is None else np.minimum(_top_two_gap(probs_a), _top_two_gap(probs_b))
    not_ties = differ & (gap > atol)
    assert not not_ties.any(), f"{int(not_ties.sum())} labels differ at pixels that are no near-tie"
