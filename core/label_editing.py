"""Label-map editing model for the labelling tool (numpy only, no Qt).

A :class:`LabelEditor` owns one ``uint8 (H, W)`` label map (0 unlabelled, 1..5
class ids, see :mod:`core.classes`) and the operations a neurosurgeon uses on it:
brush and eraser strokes, flood fill, polygon fill and copying a prediction.
Every operation is one undo step stored as a compact diff (bounding box, flat
pixel indices, old and new values) and returns the touched rectangle so a view
repaints only that.

Coordinates: a pixel ``(row, col)`` covers ``[row, row + 1) x [col, col + 1)`` in
image coordinates, its centre is at ``(row + 0.5, col + 0.5)``; pyqtgraph's
``ImageItem`` with row-major axis order uses the same convention (x = col, y = row).

Recovery and saving: :func:`write_recovery` / :func:`read_recovery` keep an
autosaved copy next to the capture; :func:`save_labels` writes ``labels.png`` and
``meta.json`` atomically (temporary file in the same folder, fsync, ``os.replace``).
"""
from __future__ import annotations

import io
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.classes import CLASS_IDS, UNLABELLED
from core.clock import utc_now_iso
from core.errors import DatasetError
from core.fileio import atomic_write

BRUSH = "brush"
ERASER = "eraser"
MAX_DIAMETER = 500
DEFAULT_UNDO_STEPS = 256
RECOVERY_NAME = ".labels.recovery.png"
LABELS_NAME = "labels.png"
META_NAME = "meta.json"


# --------------------------------------------------------------------------- rectangles and diffs


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


@dataclass(frozen=True)
class EditDiff:
    """One undo step: ``labels.flat[indices]`` went from ``old`` to ``new``.

    ``indices`` are int32 flat indices into the ``(H, W)`` map (sorted, unique),
    ``old``/``new`` uint8 of the same length; ``rect`` bounds them.
    """

    rect: Rect
    indices: np.ndarray
    old: np.ndarray
    new: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self.old.nbytes + self.new.nbytes


def _rect_of(indices: np.ndarray, width: int) -> Rect:
    if indices.size == 0:
        return EMPTY_RECT
    rows, cols = np.divmod(indices, width)
    return Rect(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)


# --------------------------------------------------------------------------- footprints


def disc_footprint(diameter: int) -> np.ndarray:
    """Boolean ``(d, d)`` disc: offsets whose centre lies within ``diameter / 2`` of the middle pixel.

    For even ``d`` the disc is centred on the pixel at index ``d // 2`` (one more
    row/column above-left than below-right), matching :func:`capsule_mask`.
    """
    d = _check_diameter(diameter)
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
    d = _check_diameter(diameter)
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


def _check_diameter(diameter: int) -> int:
    if isinstance(diameter, bool) or not isinstance(diameter, (int, np.integer)):
        raise ValueError(f"brush diameter must be an integer number of pixels, got {diameter!r}")
    if not 1 <= diameter <= MAX_DIAMETER:
        raise ValueError(f"brush diameter must be 1..{MAX_DIAMETER} px, got {diameter}")
    return int(diameter)


def _check_class(class_id: int, *, allow_unlabelled: bool = False) -> int:
    allowed = ((UNLABELLED,) if allow_unlabelled else ()) + CLASS_IDS
    if int(class_id) not in allowed:
        raise ValueError(f"class id must be one of {allowed}, got {class_id!r}")
    return int(class_id)


# --------------------------------------------------------------------------- the editor


class LabelEditor:
    """Editable label map with strokes, fills, per-operation undo/redo and live counts.

    ``labels``: uint8 ``(H, W)`` (copied). Settings (plain attributes, validated by
    their setters): ``active_class`` (1..5), ``brush_diameter`` and
    ``eraser_diameter`` (px), ``preserve_labels`` (when on, writes touch only
    unlabelled pixels and pixels of the active class; the eraser then only erases the
    active class). ``max_undo`` undo steps are kept (oldest dropped first).
    """

    def __init__(self, labels: np.ndarray, *, max_undo: int = DEFAULT_UNDO_STEPS) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 2-D (H, W) array, got shape {labels.shape}")
        if labels.dtype != np.uint8:
            if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 255:
                raise ValueError(f"labels must be uint8 class ids, got dtype {labels.dtype}")
            labels = labels.astype(np.uint8)
        if int(labels.max()) > max(CLASS_IDS):
            raise ValueError(f"labels hold unknown class id {int(labels.max())} (known: 0, {CLASS_IDS})")
        if max_undo < 1:
            raise ValueError(f"max_undo must be >= 1, got {max_undo}")
        self._labels = np.ascontiguousarray(labels).copy()
        self._flat = self._labels.reshape(-1)  # a view: writes through
        self._counts = np.bincount(self._flat, minlength=256).astype(np.int64)
        self._undo: deque[EditDiff] = deque(maxlen=max_undo)
        self._redo: list[EditDiff] = []
        self._stroke: _StrokeRecorder | None = None
        self._active_class = CLASS_IDS[0]
        self._brush = 20
        self._eraser = 20
        self.preserve_labels = False
        self.revision = 0  # bumped on every change; autosave compares it
        self.listeners: list[Callable[[Rect], None]] = []

    # ---- state
    @property
    def labels(self) -> np.ndarray:
        """The current map (read-only view; use the editing methods to change it)."""
        view = self._labels.view()
        view.flags.writeable = False
        return view

    @property
    def shape(self) -> tuple[int, int]:
        return self._labels.shape  # type: ignore[return-value]

    @property
    def active_class(self) -> int:
        return self._active_class

    @active_class.setter
    def active_class(self, class_id: int) -> None:
        self._active_class = _check_class(class_id)

    @property
    def brush_diameter(self) -> int:
        return self._brush

    @brush_diameter.setter
    def brush_diameter(self, d: int) -> None:
        self._brush = _check_diameter(d)

    @property
    def eraser_diameter(self) -> int:
        return self._eraser

    @eraser_diameter.setter
    def eraser_diameter(self, d: int) -> None:
        self._eraser = _check_diameter(d)

    def counts(self) -> dict[int, int]:
        """Live pixel count per class id (1..5), kept up to date by every edit."""
        return {c: int(self._counts[c]) for c in CLASS_IDS}

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_depth(self) -> int:
        return len(self._undo)

    def undo_nbytes(self) -> int:
        """Memory held by the undo and redo stacks (bytes)."""
        return sum(d.nbytes for d in self._undo) + sum(d.nbytes for d in self._redo)

    # ---- strokes
    @property
    def stroking(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, row: int, col: int, *, tool: str = BRUSH) -> Rect:
        """Start a brush or eraser stroke at pixel ``(row, col)`` and paint the first disc."""
        if tool not in (BRUSH, ERASER):
            raise ValueError(f"tool must be {BRUSH!r} or {ERASER!r}, got {tool!r}")
        if self._stroke is not None:
            self.end_stroke()
        value = UNLABELLED if tool == ERASER else self._active_class
        diameter = self._eraser if tool == ERASER else self._brush
        self._stroke = _StrokeRecorder(value, diameter, (int(row), int(col)))
        return self._paint_segment((int(row), int(col)), (int(row), int(col)))

    def stroke_to(self, row: int, col: int) -> Rect:
        """Continue the stroke to ``(row, col)``, covering the whole segment from the last position."""
        if self._stroke is None:
            raise RuntimeError("stroke_to() without begin_stroke()")
        p0, p1 = self._stroke.last, (int(row), int(col))
        self._stroke.last = p1
        return self._paint_segment(p0, p1)

    def end_stroke(self) -> Rect:
        """Finish the stroke: it becomes one undo step. Returns the stroke's whole rectangle."""
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return EMPTY_RECT
        indices, old = stroke.merged()
        return self._commit(indices, old)

    def stroke(self, points: Iterable[tuple[int, int]], *, tool: str = BRUSH) -> Rect:
        """A whole stroke through pixel ``points`` as one undo step (convenience for scripts and tests)."""
        pts = [(int(r), int(c)) for r, c in points]
        if not pts:
            raise ValueError("a stroke needs at least one point")
        self.begin_stroke(*pts[0], tool=tool)
        for p in pts[1:]:
            self.stroke_to(*p)
        return self.end_stroke()

    def _paint_segment(self, p0: tuple[int, int], p1: tuple[int, int]) -> Rect:
        stroke = self._stroke
        rect, mask = capsule_mask(self.shape, p0, p1, stroke.diameter)
        if rect.empty:
            return EMPTY_RECT
        region = self._labels[rect.slices]
        mask &= region != stroke.value
        if self.preserve_labels:
            if stroke.value == UNLABELLED:
                mask &= region == self._active_class
            else:
                mask &= region == UNLABELLED
        rr, cc = np.nonzero(mask)
        if rr.size == 0:
            return EMPTY_RECT
        old = region[rr, cc]
        indices = ((rr + rect.top) * self.shape[1] + (cc + rect.left)).astype(np.int32)
        stroke.add(indices, old)
        self._counts -= np.bincount(old, minlength=256)
        self._counts[stroke.value] += old.size
        region[rr, cc] = stroke.value
        changed = Rect(rect.top + int(rr.min()), rect.left + int(cc.min()),
                       rect.top + int(rr.max()) + 1, rect.left + int(cc.max()) + 1)
        self.revision += 1
        self._notify(changed)
        return changed

    # ---- fills
    def flood_fill(self, row: int, col: int, *, class_id: int | None = None) -> Rect:
        """Fill the 4-connected region of ``(row, col)``'s class with ``class_id`` (default active class).

        With ``preserve_labels`` only an unlabelled region (or one already of the
        active class) is filled.
        """
        from scipy import ndimage

        value = self._active_class if class_id is None else _check_class(class_id, allow_unlabelled=True)
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"fill seed ({row}, {col}) is outside the {h}x{w} map")
        seed = self._labels[row, col]
        if seed == value or (self.preserve_labels and seed not in (UNLABELLED, self._active_class)):
            return EMPTY_RECT
        regions, _ = ndimage.label(self._labels == seed)  # default structure: 4-connectivity
        indices = np.flatnonzero(regions.reshape(-1) == regions[row, col]).astype(np.int32)
        return self._apply(indices, value)

    def fill_polygon(self, vertices: Sequence[tuple[float, float]], *, class_id: int | None = None) -> Rect:
        """Fill a polygon given as ``(y, x)`` image coordinates (see :func:`polygon_mask`)."""
        value = self._active_class if class_id is None else _check_class(class_id, allow_unlabelled=True)
        rect, mask = polygon_mask(self.shape, vertices)
        if rect.empty:
            return EMPTY_RECT
        region = self._labels[rect.slices]
        mask &= region != value
        if self.preserve_labels:
            mask &= (region == UNLABELLED) | (region == self._active_class)
        rr, cc = np.nonzero(mask)
        indices = ((rr + rect.top) * self.shape[1] + (cc + rect.left)).astype(np.int32)
        return self._apply(indices, value)

    def copy_prediction(
        self, labels_pred: np.ndarray, probs: np.ndarray | None = None, threshold: float = 0.0
    ) -> Rect:
        """Copy a prediction into the map as one undo step.

        ``labels_pred`` uint8 ``(H, W)`` predicted class ids (0 = no prediction, never
        copied); ``probs`` optional float ``(H, W, C)`` probabilities: only pixels whose
        top probability is ``>= threshold`` (0..1) are copied. With
        ``preserve_labels`` only unlabelled pixels are written.
        """
        pred = np.asarray(labels_pred)
        if pred.shape != self.shape:
            raise ValueError(f"prediction shape {pred.shape} does not match the label map {self.shape}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"confidence threshold must be within 0..1, got {threshold}")
        take = (pred != UNLABELLED) & (pred != self._labels)
        take &= np.isin(pred, CLASS_IDS)
        if probs is not None:
            probs = np.asarray(probs)
            if probs.ndim != 3 or probs.shape[:2] != self.shape:
                raise ValueError(f"probabilities must be (H, W, C) with (H, W) = {self.shape}, got {probs.shape}")
            if threshold > 0.0:
                take &= probs.max(axis=-1) >= threshold
        if self.preserve_labels:
            take &= self._labels == UNLABELLED
        indices = np.flatnonzero(take).astype(np.int32)
        if indices.size == 0:
            return EMPTY_RECT
        old = self._flat[indices].copy()
        self._flat[indices] = pred.reshape(-1)[indices].astype(np.uint8)
        return self._commit(indices, old, notify=True)

    def _apply(self, indices: np.ndarray, value: int) -> Rect:
        if indices.size == 0:
            return EMPTY_RECT
        old = self._flat[indices].copy()
        self._flat[indices] = value
        return self._commit(indices, old, notify=True)

    def _commit(self, indices: np.ndarray, old: np.ndarray, *, notify: bool = False) -> Rect:
        """Record an applied change (``old`` values at ``indices``) as one undo step."""
        if indices.size == 0:
            return EMPTY_RECT
        new = self._flat[indices].copy()
        keep = old != new  # a stroke may paint a pixel back to its old value
        indices, old, new = indices[keep], old[keep], new[keep]
        if indices.size == 0:
            return EMPTY_RECT
        rect = _rect_of(indices, self.shape[1])
        self._undo.append(EditDiff(rect, indices, old, new))
        self._redo.clear()
        if notify:  # strokes already counted and notified per segment
            self._counts -= np.bincount(old, minlength=256)
            self._counts += np.bincount(new, minlength=256)
            self.revision += 1
            self._notify(rect)
        return rect

    # ---- undo / redo
    def undo(self) -> Rect:
        """Revert the last operation; returns its rectangle (``EMPTY_RECT`` when nothing to undo)."""
        if self._stroke is not None:
            self.end_stroke()
        if not self._undo:
            return EMPTY_RECT
        diff = self._undo.pop()
        self._set(diff.indices, diff.new, diff.old)
        self._redo.append(diff)
        return diff.rect

    def redo(self) -> Rect:
        """Re-apply the last undone operation; returns its rectangle."""
        if not self._redo:
            return EMPTY_RECT
        diff = self._redo.pop()
        self._set(diff.indices, diff.old, diff.new)
        self._undo.append(diff)
        return diff.rect

    def _set(self, indices: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
        self._flat[indices] = after
        self._counts -= np.bincount(before, minlength=256)
        self._counts += np.bincount(after, minlength=256)
        self.revision += 1
        self._notify(_rect_of(indices, self.shape[1]))

    def replace_all(self, labels: np.ndarray) -> Rect:
        """Replace the whole map (e.g. restoring a recovery file) as one undo step."""
        labels = np.asarray(labels)
        if labels.shape != self.shape:
            raise ValueError(f"labels shape {labels.shape} does not match the map {self.shape}")
        indices = np.flatnonzero(labels.reshape(-1) != self._flat).astype(np.int32)
        if indices.size == 0:
            return EMPTY_RECT
        old = self._flat[indices].copy()
        self._flat[indices] = labels.reshape(-1)[indices]
        return self._commit(indices, old, notify=True)

    def _notify(self, rect: Rect) -> None:
        for listener in self.listeners:
            listener(rect)


class _StrokeRecorder:
    """Collects (indices, old values) per segment; merged into one diff at stroke end."""

    def __init__(self, value: int, diameter: int, start: tuple[int, int]) -> None:
        self.value = value
        self.diameter = diameter
        self.last = start
        self._indices: list[np.ndarray] = []
        self._old: list[np.ndarray] = []

    def add(self, indices: np.ndarray, old: np.ndarray) -> None:
        self._indices.append(indices)
        self._old.append(old)

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._indices:
            return np.zeros(0, np.int32), np.zeros(0, np.uint8)
        indices = np.concatenate(self._indices)
        old = np.concatenate(self._old)
        # each pixel changes once per stroke (a painted pixel is skipped afterwards),
        # but keep the first old value defensively
        indices, first = np.unique(indices, return_index=True)
        return indices, old[first]


# --------------------------------------------------------------------------- recovery and atomic save


def recovery_path(folder: str | Path) -> Path:
    """``<folder>/.labels.recovery.png``: the autosave file of one capture folder."""
    return Path(folder) / RECOVERY_NAME


def _png_bytes(labels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Palette PNG of a label map (values = class ids, thesis colours)."""
    from PIL import Image, PngImagePlugin

    from core.classes import class_table

    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    # built from raw bytes so pixel values stay the class ids (no quantisation)
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(class_table().lut("thesis")[:, :3].reshape(-1).tolist())
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    # compress_level 1: label maps are mostly runs, level 1 is ~5x faster than the default and barely larger
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def _read_png(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DatasetError(path, f"label PNG must be a palette or grey image, got mode {image.mode}")
            labels = np.asarray(image, dtype=np.uint8).copy()
            text = dict(getattr(image, "text", {}) or {})
    except OSError as exc:
        raise DatasetError(path, f"cannot read label PNG ({exc})") from None
    if labels.size and int(labels.max()) > max(CLASS_IDS):
        raise DatasetError(path, f"label PNG holds unknown class id {int(labels.max())}")
    return labels, text


def write_recovery(folder: str | Path, labels: np.ndarray, *, info: dict | None = None) -> Path:
    """Autosave ``labels`` uint8 ``(H, W)`` to ``<folder>/.labels.recovery.png`` (atomic).

    ``info`` (JSON-able, e.g. author, prelabel model) is stored in the PNG with the save time.
    """
    path = recovery_path(folder)
    meta = {"saved": utc_now_iso(), **(info or {})}
    data = _png_bytes(labels, {"neurohsi-recovery": json.dumps(meta)})
    atomic_write(path, lambda fh: fh.write(data))
    return path


def read_recovery(folder: str | Path) -> tuple[np.ndarray, dict] | None:
    """The autosaved labels and their info, or ``None`` when there is no recovery file."""
    path = recovery_path(folder)
    if not path.is_file():
        return None
    labels, text = _read_png(path)
    try:
        meta = json.loads(text.get("neurohsi-recovery", "{}"))
    except json.JSONDecodeError:
        meta = {}
    return labels, meta


def recovery_pending(folder: str | Path) -> bool:
    """True when a recovery file exists and is newer than ``labels.png`` (or there is no labels.png)."""
    rec = recovery_path(folder)
    if not rec.is_file():
        return False
    saved = Path(folder) / LABELS_NAME
    return not saved.is_file() or rec.stat().st_mtime_ns > saved.stat().st_mtime_ns


def discard_recovery(folder: str | Path) -> None:
    recovery_path(folder).unlink(missing_ok=True)


def save_labels(
    folder: str | Path, labels: np.ndarray, *, author: str, model: str | None = None
) -> Path:
    """Write ``labels.png`` and update ``meta.json`` in a dataset capture folder, each atomically.

    ``labels`` uint8 ``(H, W)`` class ids; ``author`` who drew them; ``model`` the
    model used for pre-labelling (name/version/sha, or ``None``). meta.json keeps its
    other keys and gains ``labels: {author, saved, prelabel_model, counts}``. The
    recovery file is removed once both files are in place. Returns the labels path.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "capture folder does not exist")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 (H, W), got {labels.dtype} {labels.shape}")
    if not str(author).strip():
        raise ValueError("author must not be empty")
    meta_path = folder / META_NAME
    meta: dict = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(meta_path, f"not valid JSON ({exc})") from None
    counts = np.bincount(labels.reshape(-1), minlength=max(CLASS_IDS) + 1)
    meta["labels"] = {
        "author": str(author),
        "saved": utc_now_iso(),
        "prelabel_model": model,
        "counts": {str(c): int(counts[c]) for c in CLASS_IDS},
    }
    labels_path = folder / LABELS_NAME
    from core.export import write_label_png  # the one label-PNG writer

    write_label_png(labels_path, labels)
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(meta_path, text.encode())
    discard_recovery(folder)
    return labels_path


