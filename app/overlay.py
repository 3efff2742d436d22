"""Pure numpy colouring of classification results for display and export (no Qt).

Every image here is row-major: ``(H, W)`` maps, ``(H, W, 3)`` RGB and ``(H, W, 4)``
RGBA, all ``uint8``. The class map, the confidence map and the per-class
probability maps share one RGBA form so the view and the exported PNG are
coloured by the same code.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.classes import UNLABELLED, class_table

# The "inferno" ramp at 9 stops (matplotlib's, public domain): dark = low
# probability, bright = high. Interpolated to 256 entries below.
_INFERNO_STOPS = np.array(
    [
        (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
        (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
    ],
    dtype=np.float64,
)


def heat_lut() -> np.ndarray:
    """``uint8 (256, 4)`` opaque heat-map colours for values 0..255."""
    x = np.linspace(0.0, 1.0, len(_INFERNO_STOPS))
    t = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.interp(t, x, _INFERNO_STOPS[:, k]) for k in range(3)], axis=-1)
    lut = np.full((256, 4), 255, dtype=np.uint8)
    lut[:, :3] = np.round(rgb).astype(np.uint8)
    return lut


def boundaries(labels: np.ndarray) -> np.ndarray:
    """``bool (H, W)``: pixels whose 4-neighbourhood holds another class (the contour)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels != UNLABELLED)


def class_rgba(
    labels: np.ndarray,
    *,
    palette: str = "thesis",
    hidden: Iterable[int] = (),
    contour: bool = False,
) -> np.ndarray:
    """Class map ``uint8 (H, W)`` -> ``uint8 (H, W, 4)``; unlabelled and hidden classes transparent.

    ``contour=True`` keeps only the class boundaries, so the tissue shows through.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 (H, W), got {labels.dtype} {labels.shape}")
    lut = class_table().lut(palette)
    for class_id in hidden:
        lut[int(class_id), 3] = 0
    rgba = lut[labels]
    if contour:
        rgba[~boundaries(labels), 3] = 0
    return rgba


def heat_rgba(values: np.ndarray, *, valid: np.ndarray | None = None) -> np.ndarray:
    """Values in [0, 1] ``(H, W)`` -> heat-map ``uint8 (H, W, 4)``; invalid pixels transparent."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"values must be (H, W), got shape {values.shape}")
    index = np.clip(np.nan_to_num(values) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgba = heat_lut()[index]
    if valid is not None:
        rgba[~valid, 3] = 0
    return rgba


def class_fractions(labels: np.ndarray, class_ids: Iterable[int]) -> dict[int, float]:
    """Fraction of the whole frame (all pixels, valid or not) per class id."""
    labels = np.asarray(labels)
    counts = np.bincount(labels.ravel(), minlength=256)
    total = max(labels.size, 1)
    return {int(c): float(counts[int(c)]) / total for c in class_ids}
