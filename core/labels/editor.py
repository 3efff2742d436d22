"""The label-map editor of the labelling tool (numpy only, no Qt).

A :class:`LabelEditor` owns one ``uint8 (H, W)`` label map (0 unlabelled, 1..5
class ids, see :mod:`core.classes`) and the operations a neurosurgeon uses on it:
brush and eraser strokes, flood fill, polygon fill and copying a prediction.
Every operation is one undo step (:mod:`core.labels.history`: the touched
rectangle before and after, compressed) and returns that rectangle so a view
repaints only it. The pixel geometry lives in :mod:`core.labels.geometry`,
saving and recovery in :mod:`core.labels.store`.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np

from core.classes import CLASS_IDS, UNLABELLED
from core.labels.history import StrokeRecorder, UndoHistory
from core.labels.geometry import EMPTY_RECT, Rect, capsule_mask, check_diameter, flood_region, polygon_mask, rect_of

BRUSH = "brush"
ERASER = "eraser"
DEFAULT_UNDO_STEPS = 256
LARGE_FILL_FRACTION = 0.5  # fills above this share of the map ask first


def check_class(class_id: int, *, allow_unlabelled: bool = False) -> int:
    """``class_id`` as int after checking it is a class id (1..5, or 0 when ``allow_unlabelled``)."""
    allowed = ((UNLABELLED,) if allow_unlabelled else ()) + CLASS_IDS
    if int(class_id) not in allowed:
        raise ValueError(f"class id must be one of {allowed}, got {class_id!r}")
    return int(class_id)


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
        self._labels = np.ascontiguousarray(labels).copy()
        self._flat = self._labels.reshape(-1)  # a view: writes through
        self._counts = np.bincount(self._flat, minlength=256).astype(np.int64)
        self.history = UndoHistory(max_undo)
        self._stroke: StrokeRecorder | None = None
        self._active_class = CLASS_IDS[0]
        self._brush = 20
        self._eraser = 20
        self.preserve_labels = False
        self.valid: np.ndarray | None = None  # bool (H, W): pixels a fill may reach (None: all)
        self.revision = 0  # bumped on every pixel change (also mid-stroke); autosave compares it
        self.listeners: list[Callable[[Rect], None]] = []  # called with the changed rectangle
        # called after the undo/redo stacks changed (a stroke ended, a fill, undo, redo), so
        # views read can_undo / can_redo only once they are true to the stacks
        self.history_listeners: list[Callable[[], None]] = []

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
        self._active_class = check_class(class_id)

    @property
    def brush_diameter(self) -> int:
        return self._brush

    @brush_diameter.setter
    def brush_diameter(self, d: int) -> None:
        self._brush = check_diameter(d)

    @property
    def eraser_diameter(self) -> int:
        return self._eraser

    @eraser_diameter.setter
    def eraser_diameter(self, d: int) -> None:
        self._eraser = check_diameter(d)

    def counts(self) -> dict[int, int]:
        """Live pixel count per class id (1..5), kept up to date by every edit."""
        return {c: int(self._counts[c]) for c in CLASS_IDS}

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    @property
    def undo_depth(self) -> int:
        return self.history.depth

    @property
    def state_id(self) -> int:
        """Identifies the map's content in the undo history (see :attr:`UndoHistory.state_id`)."""
        return self.history.state_id

    def undo_nbytes(self) -> int:
        """Memory held by the undo and redo stacks (bytes)."""
        return self.history.nbytes()

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
        self._stroke = StrokeRecorder(value, diameter, (int(row), int(col)))
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
    def flood_fill(
        self, row: int, col: int, *, class_id: int | None = None, confirm: Callable[[int], bool] | None = None
    ) -> Rect:
        """Fill the 4-connected region of ``(row, col)``'s class with ``class_id`` (default active class).

        The region is bounded by other classes and by pixels outside ``valid``
        (see :func:`core.labels.geometry.flood_region`). With ``preserve_labels``
        only an unlabelled region (or one already of the active class) is filled.
        A fill of more than :data:`LARGE_FILL_FRACTION` of the map calls
        ``confirm(pixel_count)`` first and does nothing when it answers False
        (a click in the wrong place should not repaint the whole capture).
        """
        indices = self.fill_indices(row, col, class_id=class_id)
        if confirm is not None and indices.size > LARGE_FILL_FRACTION * self._flat.size:
            if not confirm(int(indices.size)):
                return EMPTY_RECT
        value = self._active_class if class_id is None else int(class_id)
        return self._apply(indices, value)

    def fill_indices(self, row: int, col: int, *, class_id: int | None = None) -> np.ndarray:
        """Flat int32 indices :meth:`flood_fill` would change (empty when it would change nothing)."""
        value = self._active_class if class_id is None else check_class(class_id, allow_unlabelled=True)
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"fill seed ({row}, {col}) is outside the {h}x{w} map")
        seed = self._labels[row, col]
        if seed == value or (self.preserve_labels and seed not in (UNLABELLED, self._active_class)):
            return np.zeros(0, np.int32)
        return flood_region(self._labels, row, col, valid=self.valid)

    def fill_polygon(self, vertices: Sequence[tuple[float, float]], *, class_id: int | None = None) -> Rect:
        """Fill a polygon given as ``(y, x)`` image coordinates (see :func:`polygon_mask`)."""
        value = self._active_class if class_id is None else check_class(class_id, allow_unlabelled=True)
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

    def prediction_indices(
        self, labels_pred: np.ndarray, probs: np.ndarray | None = None, threshold: float = 0.0
    ) -> np.ndarray:
        """Flat int32 indices :meth:`copy_prediction` would change (see there for the arguments)."""
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
        return np.flatnonzero(take).astype(np.int32)

    def labelled_among(self, indices: np.ndarray) -> int:
        """How many of the flat ``indices`` hold a class now (would lose an existing label)."""
        return int(np.count_nonzero(self._flat[indices]))

    def copy_prediction(
        self, labels_pred: np.ndarray, probs: np.ndarray | None = None, threshold: float = 0.0
    ) -> Rect:
        """Copy a prediction into the map as one undo step.

        ``labels_pred`` uint8 ``(H, W)`` predicted class ids (0 = no prediction, never
        copied); ``probs`` optional float ``(H, W, C)`` probabilities: only pixels whose
        top probability is ``>= threshold`` (0..1) are copied. With
        ``preserve_labels`` only unlabelled pixels are written.
        """
        indices = self.prediction_indices(labels_pred, probs, threshold)
        if indices.size == 0:
            return EMPTY_RECT
        old = self._flat[indices].copy()
        self._flat[indices] = np.asarray(labels_pred).reshape(-1)[indices].astype(np.uint8)
        return self._commit(indices, old, notify=True)

    def _apply(self, indices: np.ndarray, value: int) -> Rect:
        if indices.size == 0:
            return EMPTY_RECT
        old = self._flat[indices].copy()
        self._flat[indices] = value
        return self._commit(indices, old, notify=True)

    def _commit(self, indices: np.ndarray, old: np.ndarray, *, notify: bool = False) -> Rect:
        """Record an applied change (``old`` values at flat ``indices``) as one undo step."""
        if indices.size == 0:
            return EMPTY_RECT
        new = self._flat[indices].copy()
        keep = old != new  # a stroke may paint a pixel back to its old value
        indices, old, new = indices[keep], old[keep], new[keep]
        if indices.size == 0:
            return EMPTY_RECT
        rect = rect_of(indices, self.shape[1])
        after = self._labels[rect.slices].copy()
        before = after.copy()
        rows, cols = np.divmod(indices, self.shape[1])
        before[rows - rect.top, cols - rect.left] = old
        self.history.push(rect, before, after)
        if notify:  # strokes already counted and notified per segment
            self._counts -= np.bincount(old, minlength=256)
            self._counts += np.bincount(new, minlength=256)
            self.revision += 1
            self._notify(rect)
        self._history_changed()
        return rect

    # ---- undo / redo
    def undo(self) -> Rect:
        """Revert the last operation; returns its rectangle (``EMPTY_RECT`` when nothing to undo)."""
        if self._stroke is not None:
            self.end_stroke()
        diff = self.history.pop_undo()  # stacks first: listeners of the pixel change see them true
        if diff is None:
            return EMPTY_RECT
        self._set(diff.rect, diff.new(), diff.old())
        self._history_changed()
        return diff.rect

    def redo(self) -> Rect:
        """Re-apply the last undone operation; returns its rectangle."""
        if self._stroke is not None:
            self.end_stroke()
        diff = self.history.pop_redo()
        if diff is None:
            return EMPTY_RECT
        self._set(diff.rect, diff.old(), diff.new())
        self._history_changed()
        return diff.rect

    def _set(self, rect: Rect, before: np.ndarray, after: np.ndarray) -> None:
        # the map inside rect equals ``before`` here: every change goes through a diff
        self._labels[rect.slices] = after
        self._counts -= np.bincount(before.reshape(-1), minlength=256)
        self._counts += np.bincount(after.reshape(-1), minlength=256)
        self.revision += 1
        self._notify(rect)

    def _history_changed(self) -> None:
        for listener in self.history_listeners:
            listener()

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
