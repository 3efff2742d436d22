"""The image view: synthetic RGB with the classification overlay above it (pyqtgraph).

Row-major images (``pg.setConfigOptions(imageAxisOrder='row-major')`` is set once
by :mod:`app.application`); item coordinates are ``x = column``, ``y = row``, one
unit per cube pixel, row 0 at the top. The overlay is one RGBA ``ImageItem`` whose
content depends on the view mode: class map (filled or contour, hidden classes
transparent), confidence (maximum probability as a heat map) or one class's
probability. Opacity is the item's opacity, so changing it re-colours nothing.
In outline mode the fill gives way to the tumour border alone: a 3 px
(screen) line in a colour that stands out on tissue over a dark edge, drawn by
two ``IsocurveItem``s so it stays 3 px at every zoom. Navigation: wheel zoom,
drag (left with Space held, or middle) to pan, :meth:`zoom_to_fit` (on every
open) and :meth:`zoom_actual` (one image pixel per screen pixel).
What is shown comes from an :class:`app.overlay_state.OverlayState` the view
binds to (its own unless one is given); the view holds no display options.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal

from app.overlay import class_rgba, heat_rgba
from app.overlay_state import OverlayState
from core.classes import class_table

OUTLINE_COLOUR = "#39ff14"  # neon green: far from every tissue and blood hue, and from the palette's tumour
OUTLINE_WIDTH_PX = 3


class ImageView(pg.GraphicsLayoutWidget):
    """RGB + overlay + pinned-spectrum markers + rectangular ROI."""

    hovered = Signal(int, int)  # row, col under the mouse (cube pixels)
    left = Signal()  # the mouse left the image
    clicked = Signal(int, int)  # row, col of a left click
    roi_changed = Signal(object)  # (row0, row1, col0, col1) half-open, or None when hidden

    def __init__(self, parent=None, *, state: OverlayState | None = None) -> None:
        super().__init__(parent)
        self.setBackground("#101214")
        self.view: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.rgb_item = pg.ImageItem()
        self.overlay_item = pg.ImageItem()
        self.overlay_item.setZValue(10)
        self.pin_item = pg.ScatterPlotItem(pxMode=True)
        self.pin_item.setZValue(20)
        self.outline_edge = pg.IsocurveItem(level=0.5, pen=pg.mkPen("#000000", width=OUTLINE_WIDTH_PX + 2))
        self.outline_item = pg.IsocurveItem(level=0.5, pen=pg.mkPen(OUTLINE_COLOUR, width=OUTLINE_WIDTH_PX))
        for z, item in ((11, self.outline_edge), (12, self.outline_item)):
            item.setZValue(z)
            item.setPos(-0.5, -0.5)  # the mask is padded by one pixel; iso-lines run between pixel centres
        for item in (self.rgb_item, self.overlay_item, self.outline_edge, self.outline_item, self.pin_item):
            self.view.addItem(item)
        self.roi = pg.RectROI([0, 0], [10, 10], pen=pg.mkPen("#00e5ff", width=2), rotatable=False)
        self.roi.setZValue(30)
        self.roi.hide()
        self.view.addItem(self.roi)
        self.roi.sigRegionChanged.connect(self._emit_roi)

        self.labels: np.ndarray | None = None  # uint8 (H, W)
        self.probabilities: np.ndarray | None = None  # float32 (H, W, C)
        self.class_ids: tuple[int, ...] = ()
        self.valid: np.ndarray | None = None  # bool (H, W)
        self.state = state if state is not None else OverlayState()
        for name in ("palette", "hidden", "contour", "outline", "view_mode", "probability_class"):
            self.state.on_change(name, self._restyle)
        self.state.on_change("opacity", self._apply_opacity)
        self.state.on_change("visible", self._restyle)
        self.state.on_change("pins", self._draw_pins)
        self._apply_opacity(self.state.opacity)
        self.overlay_item.setVisible(self.state.visible)
        self._space_down = False

        # Hover is throttled: at most 60 updates a second whatever the mouse does.
        self._hover_proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=60, slot=self.on_mouse_moved)
        self.scene().sigMouseClicked.connect(self.on_mouse_clicked)

    # -- content -----------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int] | None:
        image = self.rgb_item.image
        return None if image is None else tuple(image.shape[:2])

    def set_rgb(self, rgb: np.ndarray) -> None:
        """Show a new capture: ``uint8 (H, W, 3)``. Clears the overlay, pins and ROI."""
        self.rgb_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.clear_result()
        self.state.clear_pins()
        self.set_roi_visible(False)
        self.zoom_to_fit()

    def clear_result(self) -> None:
        self.labels = self.probabilities = self.valid = None
        self.class_ids = ()
        self.overlay_item.clear()

    def set_result(self, labels: np.ndarray, probabilities: np.ndarray, class_ids, valid=None) -> None:
        """Show a classification: labels ``uint8 (H, W)``, probabilities ``float32 (H, W, C)``."""
        shape = self.image_shape
        if shape is not None and labels.shape != shape:
            raise ValueError(f"class map {labels.shape} does not match the image {shape}")
        self.labels, self.probabilities = labels, probabilities
        self.class_ids = tuple(int(c) for c in class_ids)
        self.valid = labels != 0 if valid is None else valid
        self.render_overlay()

    # -- display options (from the state) -----------------------------------
    def _apply_opacity(self, percent: int) -> None:
        self.overlay_item.setOpacity(percent / 100.0)

    def _restyle(self, _value=None) -> None:
        self.render_overlay()

    def overlay_rgba(self) -> np.ndarray | None:
        """The overlay as ``uint8 (H, W, 4)`` for the current mode, or None before classification."""
        if self.labels is None:
            return None
        state = self.state
        if state.view_mode == "classes":
            return class_rgba(self.labels, palette=state.palette, hidden=state.hidden, contour=state.contour)
        if state.view_mode == "confidence":
            return heat_rgba(self.probabilities.max(axis=-1), valid=self.valid)
        wanted = state.probability_class
        class_id = wanted if wanted in self.class_ids else self.class_ids[0]
        return heat_rgba(self.probabilities[..., self.class_ids.index(class_id)], valid=self.valid)

    def render_overlay(self) -> None:
        outline = self.state.outline and self.labels is not None
        rgba = None if outline else self.overlay_rgba()
        if rgba is None:
            self.overlay_item.clear()
        else:
            self.overlay_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.overlay_item.setVisible(self.state.visible)
        mask = self.outline_mask() if outline and self.state.visible else None
        for item in (self.outline_edge, self.outline_item):
            item.setData(mask if mask is not None else None)
            item.setVisible(mask is not None)

    def outline_mask(self) -> np.ndarray | None:
        """``float32 (H + 2, W + 2)``: 1 on tumour pixels, padded with 0 so borders at the edge close."""
        if self.labels is None:
            return None
        tumour = next(t.id for t in class_table().classes if t.key == "tumour")
        return np.pad((self.labels == tumour).astype(np.float32), 1)

    # -- navigation --------------------------------------------------------
    def zoom_to_fit(self) -> None:
        """Show the whole image as large as the view allows."""
        shape = self.image_shape
        if shape is not None:
            self.view.setRange(QRectF(0, 0, shape[1], shape[0]), padding=0.01)

    def zoom_actual(self) -> None:
        """One image pixel per screen pixel, centred where the view is centred now."""
        rect = self.view.viewRect()
        width, height = self.view.width(), self.view.height()  # screen pixels of the view box
        if width <= 0 or height <= 0:
            return
        centre = rect.center()
        self.view.setRange(QRectF(centre.x() - width / 2, centre.y() - height / 2, width, height), padding=0)

    def keyPressEvent(self, event) -> None:
        """Space held: an open-hand cursor; a left drag pans (as the middle button does) and pins nothing."""
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = True
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = False
                self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    # -- pins and ROI ------------------------------------------------------
    def _draw_pins(self, pins=()) -> None:
        spots = [
            {"pos": (p.col + 0.5, p.row + 0.5), "symbol": "o", "size": 14, "pen": pg.mkPen(p.colour, width=3),
             "brush": None}
            for p in pins
        ]
        self.pin_item.setData(spots=spots)

    def set_roi_visible(self, visible: bool) -> None:
        shape = self.image_shape
        if visible and shape is not None:
            h, w = shape
            self.roi.maxBounds = QRectF(0, 0, w, h)
            if not self.roi.isVisible():
                self.roi.setPos((w // 4, h // 4), finish=False)
                self.roi.setSize((max(w // 4, 2), max(h // 4, 2)), finish=False)
            self.roi.show()
            self._emit_roi()
        else:
            self.roi.hide()
            self.roi_changed.emit(None)

    def roi_bounds(self) -> tuple[int, int, int, int] | None:
        """The ROI as half-open ``(row0, row1, col0, col1)`` clipped to the image, or None."""
        shape = self.image_shape
        if shape is None or not self.roi.isVisible():
            return None
        x, y = self.roi.pos()
        w, h = self.roi.size()
        col0, row0 = max(int(round(x)), 0), max(int(round(y)), 0)
        col1, row1 = min(int(round(x + w)), shape[1]), min(int(round(y + h)), shape[0])
        if row1 <= row0 or col1 <= col0:
            return None
        return row0, row1, col0, col1

    def _emit_roi(self, *_args) -> None:
        self.roi_changed.emit(self.roi_bounds())

    # -- mouse -------------------------------------------------------------
    def pixel_at(self, scene_pos) -> tuple[int, int] | None:
        """``(row, col)`` of the cube pixel under a scene position, or None outside the image."""
        shape = self.image_shape
        if shape is None:
            return None
        p = self.rgb_item.mapFromScene(scene_pos)
        row, col = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= row < shape[0] and 0 <= col < shape[1]:
            return row, col
        return None

    def scene_pos_of(self, row: int, col: int):
        """Scene position of the centre of pixel ``(row, col)`` (for tests and benchmarks)."""
        return self.rgb_item.mapToScene(pg.Point(col + 0.5, row + 0.5))

    def on_mouse_moved(self, event) -> None:
        """Slot of the throttled ``sigMouseMoved`` proxy; ``event`` is ``(scene_pos,)``."""
        pixel = self.pixel_at(event[0])
        if pixel is None:
            self.left.emit()
        else:
            self.hovered.emit(*pixel)

    def on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self._space_down:
            return
        pixel = self.pixel_at(event.scenePos())
        if pixel is not None:
            self.clicked.emit(*pixel)
