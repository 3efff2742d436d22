"""Pixel geometry of the labelling tools (numpy only): rectangles, brush discs, polygons, flood regions.

Coordinates: a pixel ``(row, col)`` covers ``[row, row + 1) x [col, col + 1)`` in
image coordinates, its centre is at ``(row + 0.5, col + 0.5)``; pyqtgraph's
``ImageItem`` with row-major axis order uses the same convention (x = col, y = row).

Every function returns what it selects as a clipped bounding :class:`Rect` plus a
bool mask of the rectangle's shape, or as sorted flat int32 indices into the
``(H, W)`` map, so the editor touches only those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MAX_DIAMETER = 500


@dataclass(frozen=True)
class Rect:
    """Half-open pixel rectangle ``[top, bottom) x [left, right)`` (rows, cols)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def empty(self) -> bool:
        return self.bottom <= self.top or self.right <= self.left

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    @property
    def shape(self) -> tuple[int, int]:
        return max(0, self.bottom - self.top), max(0, self.right - self.left)


EMPTY_RECT = Rect(0, 0, 0, 0)


def rect_of(indices: np.ndarray, width: int) -> Rect:
    """Bounding rectangle of flat ``indices`` into a map ``width`` columns wide."""
    if indices.size == 0:
        return EMPTY_RECT
    rows, cols = np.divmod(indices, width)
    return Rect(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)


def check_diameter(diameter: int) -> int:
    """``diameter`` as int after checking it is a whole number of pixels within 1..MAX_DIAMETER."""
    if isinstance(diameter, bool) or not isinstance(diameter, (int, np.integer)):
        raise ValueError(f"brush diameter must be an integer number of pixels, got {diameter!r}")
    if not 1 <= diameter <= MAX_DIAMETER:
        raise ValueError(f"brush diameter must be 1..{MAX_DIAMETER} px, got {diameter}")
    return int(diameter)


def disc_footprint(diameter: int) -> np.ndarray:
    """Boolean ``(d, d)`` disc: offsets whose centre lies within ``diameter / 2`` of the middle pixel.

    For even ``d`` the disc is centred on the pixel at index ``d // 2`` (one more
    row/column above-left than below-right), matching :func:`capsule_mask`.
    """
    d = check_diameter(diameter)
    r = d / 2.0
    off = np.arange(d) - d // 2
    return off[:, None] ** 2 + off[None, :] ** 2 <= r * r


def capsule_mask(
    shape: tuple[int, int], p0: tuple[int, int], p1: tuple[int, int], diameter: int
) -> tuple[Rect, np.ndarray]:
    """Pixels whose centre is within ``diameter / 2`` of the segment ``p0 -> p1`` (pixel indices).

    This is the union of brush discs at every position along the segment, so a fast
    mouse move leaves no gap. Returns the clipped bounding ``Rect`` and a bool mask of
    its shape (``EMPTY_RECT`` and an empty mask when the capsule is off the map).
    """
    d = check_diameter(diameter)
    r = d / 2.0
    h, w = shape
    (r0, c0), (r1, c1) = p0, p1
    reach = d // 2 + 1
    rect = Rect(
        max(0, min(r0, r1) - reach), max(0, min(c0, c1) - reach),
        min(h, max(r0, r1) + reach), min(w, max(c0, c1) + reach),
    )
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    rows = np.arange(rect.top, rect.bottom, dtype=np.float32)[:, None]
    cols = np.arange(rect.left, rect.right, dtype=np.float32)[None, :]
    dr, dc = float(r1 - r0), float(c1 - c0)
    length2 = dr * dr + dc * dc
    if length2 == 0.0:
        dist2 = (rows - r0) ** 2 + (cols - c0) ** 2
    else:
        # projection parameter of each pixel centre onto the segment, clamped to [0, 1]
        t = np.clip(((rows - r0) * dr + (cols - c0) * dc) / length2, 0.0, 1.0)
        dist2 = (rows - (r0 + t * dr)) ** 2 + (cols - (c0 + t * dc)) ** 2
    return rect, dist2 <= r * r


def polygon_mask(shape: tuple[int, int], vertices: Sequence[tuple[float, float]]) -> tuple[Rect, np.ndarray]:
    """Even-odd fill of a polygon given as ``(y, x)`` image coordinates (row, col; floats).

    A pixel is inside when its centre ``(row + 0.5, col + 0.5)`` is inside by the
    even-odd rule. Vectorised scanline: each edge crossing of a row's centre line
    toggles parity from the first pixel whose centre lies right of the crossing.
    Returns the clipped bounding ``Rect`` and a bool mask of its shape.
    """
    pts = np.asarray(vertices, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 3:
        raise ValueError(f"polygon needs at least 3 (y, x) vertices, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("polygon vertices must be finite")
    h, w = shape
    top = max(0, int(np.floor(pts[:, 0].min() - 0.5)))
    bottom = min(h, int(np.ceil(pts[:, 0].max() + 0.5)))
    left = max(0, int(np.floor(pts[:, 1].min() - 0.5)))
    right = min(w, int(np.ceil(pts[:, 1].max() + 0.5)))
    rect = Rect(top, left, bottom, right)
    if rect.empty:
        return EMPTY_RECT, np.zeros((0, 0), bool)
    y0, x0 = pts[:, 0], pts[:, 1]
    y1, x1 = np.roll(y0, -1), np.roll(x0, -1)
    yc = np.arange(top, bottom, dtype=np.float64)[:, None] + 0.5  # (rows, 1) scanline centres
    # half-open rule (y0 <= y < y1 or y1 <= y < y0) counts a vertex on a scanline once
    crosses = (y0 <= yc) & (yc < y1) | (y1 <= yc) & (yc < y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xs = x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
    row_idx, edge_idx = np.nonzero(crosses)
    # first column whose centre (c + 0.5) is strictly right of the crossing
    first_col = np.floor(xs[row_idx, edge_idx] - 0.5).astype(np.int64) + 1
    first_col = np.clip(first_col - left, 0, right - left)
    toggles = np.zeros((bottom - top, right - left + 1), np.int32)
    np.add.at(toggles, (row_idx, first_col), 1)
    mask = (np.cumsum(toggles[:, :-1], axis=1) & 1).astype(bool)
    return rect, mask


def flood_region(labels: np.ndarray, row: int, col: int, *, valid: np.ndarray | None = None) -> np.ndarray:
    """Flat int32 indices of the 4-connected region of ``labels[row, col]``'s class around the seed.

    ``labels`` uint8 ``(H, W)``; ``valid`` optional bool ``(H, W)``: pixels outside it
    (no tissue, saturated, masked by the validity mask) bound the region like a
    different class does. Empty when the seed itself is invalid.
    """
    from scipy import ndimage

    h, w = labels.shape
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"fill seed ({row}, {col}) is outside the {h}x{w} map")
    same = labels == labels[row, col]
    if valid is not None:
        if valid.shape != labels.shape:
            raise ValueError(f"validity mask {valid.shape} does not match the label map {labels.shape}")
        same &= valid
        if not valid[row, col]:
            return np.zeros(0, np.int32)
    regions, _ = ndimage.label(same)  # default structure: 4-connectivity
    return np.flatnonzero(regions.reshape(-1) == regions[row, col]).astype(np.int32)
