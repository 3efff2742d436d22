"""The labelling canvas: synthetic RGB with the editable label layer above it (pyqtgraph).

Painting is fast because the label ``ImageItem`` displays an ``Indexed8`` QImage
that *wraps* a uint8 display buffer (class ids, colours from a 256-entry RGBA
look-up table): an edit writes only the touched rectangle of that buffer and asks
Qt to repaint only that rectangle — no re-render of the whole image.

Mouse: left button paints / erases / fills / adds polygon vertices; middle drag,
or left drag while Space is held, pans; the wheel zooms about the mouse; right
drag zooms as in every pyqtgraph view; Alt + left drag changes the brush size
(horizontal movement, 1 px per 2 screen px). A small panel in the top-left corner
shows the tool, its size and the active class.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling.cursor import BrushCursor
from core.labels import editor as le
from core.classes import class_table
from core.labels.editor import LabelEditor
from core.labels.geometry import EMPTY_RECT, MAX_DIAMETER, Rect

BRUSH, ERASER, FILL, POLYGON = "brush", "eraser", "fill", "polygon"
TOOLS = (BRUSH, ERASER, FILL, POLYGON)
FILLED, OUTLINE = "filled", "outline"


def _boundary(labels: np.ndarray) -> np.ndarray:
    """bool mask of labelled pixels whose 4-neighbourhood holds another value."""
    edge = np.zeros(labels.shape, bool)
    v = labels[1:, :] != labels[:-1, :]
    h = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= v
    edge[:-1, :] |= v
    edge[:, 1:] |= h
    edge[:, :-1] |= h
    return edge & (labels != 0)


class LabelLayerItem(pg.ImageItem):
    """Label ``ImageItem`` that forwards left-button mouse input to its canvas."""

    def __init__(self, canvas: "LabelCanvas") -> None:
        super().__init__()
        self._canvas = canvas
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)

    # Qt-level events: accepting the press makes this item the mouse grabber, so
    # painting starts on press (no drag threshold) and every move arrives here.
    def mousePressEvent(self, ev: QtWidgets.QGraphicsSceneMouseEvent) -> None:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton or self._canvas.space_held:
            ev.ignore()  # the ViewBox below pans (Space + left drag, as in napari and QuPath)
            return
        ev.accept()
        self._canvas.press(ev.pos(), ev.modifiers(), ev.screenPos())

    def mouseMoveEvent(self, ev: QtWidgets.QGraphicsSceneMouseEvent) -> None:
        ev.accept()
        self._canvas.move(ev.pos(), ev.screenPos())

    def mouseReleaseEvent(self, ev: QtWidgets.QGraphicsSceneMouseEvent) -> None:
        ev.accept()
        self._canvas.release(ev.pos())

    def mouseDoubleClickEvent(self, ev: QtWidgets.QGraphicsSceneMouseEvent) -> None:
        ev.accept()
        self._canvas.double_click(ev.pos())

    def hoverEvent(self, ev) -> None:  # pyqtgraph hover event
        if ev.isExit() or self._canvas.space_held:
            self._canvas.hover(None)
        else:
            self._canvas.hover(ev.pos())


class LabelCanvas(pg.GraphicsLayoutWidget):
    """View of one capture: RGB ``(H, W, 3)`` below, labels above; edits go to ``editor``.

    Signals: ``changed(Rect)`` after any edit, ``brushSizeChanged(int)`` on Alt+drag,
    ``polygonChanged(int)`` with the number of pending polygon vertices.
    ``confirm_fill(pixels) -> bool`` is asked before a fill of more than half the map.
    """

    changed = QtCore.Signal(object)
    brushSizeChanged = QtCore.Signal(int)
    polygonChanged = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = self.addViewBox()
        self.view.setAspectLocked(True)
        self.view.invertY(True)  # image rows grow downwards, as in every image viewer
        self.view.setMenuEnabled(False)
        self.rgb_item = pg.ImageItem(axisOrder="row-major")
        self.label_item = LabelLayerItem(self)
        self.label_item.setOpts(axisOrder="row-major")
        self.label_item.setZValue(1)
        self.view.addItem(self.rgb_item)
        self.view.addItem(self.label_item)
        self.cursor = BrushCursor(self.view)
        self.polygon_item = pg.PlotDataItem(pen=pg.mkPen((255, 255, 255), width=1.5, style=QtCore.Qt.PenStyle.DashLine),
                                            symbol="o", symbolSize=5, symbolBrush=(255, 255, 255))
        self.polygon_item.setZValue(3)
        self.view.addItem(self.polygon_item)
        self.editor: LabelEditor | None = None
        self.tool = BRUSH
        self.display = FILLED
        self._display: np.ndarray | None = None  # uint8 (H, W) the QImage wraps
        self._palette = "thesis"
        self._polygon: list[tuple[float, float]] = []  # (y, x) image coordinates
        self._resize_from: tuple[float, int] | None = None  # (screen x, diameter) during Alt+drag
        self._last_pos: QtCore.QPointF | None = None
        self.space_held = False
        self.confirm_fill = None  # Callable[[int], bool] | None
        self.hud = QtWidgets.QLabel(self)
        self.hud.setObjectName("label_hud")
        self.hud.setStyleSheet("QLabel { background: rgba(0, 0, 0, 170); color: white; padding: 4px 8px;"
                               " font-size: 13pt; border-radius: 4px; }")
        self.hud.move(8, 8)

    # ---- content
    def set_content(self, rgb: np.ndarray | None, editor: LabelEditor) -> None:
        """Show ``rgb`` uint8 ``(H, W, 3)`` (or grey when None) and edit ``editor``'s labels."""
        h, w = editor.shape
        if rgb is None:
            rgb = np.full((h, w, 3), 64, np.uint8)
        if rgb.shape[:2] != (h, w):
            raise ValueError(f"RGB image {rgb.shape[:2]} and label map {(h, w)} differ in size")
        if self.editor is not None and self._on_edit in self.editor.listeners:
            self.editor.listeners.remove(self._on_edit)
        self.editor = editor
        editor.listeners.append(self._on_edit)
        self.rgb_item.setImage(rgb, autoLevels=False, levels=None)
        self._display = np.zeros((h, w), np.uint8)
        self._refresh_display(Rect(0, 0, h, w))
        self.label_item.setImage(self._display, lut=self._lut(), levels=None, autoLevels=False)
        self.cancel_polygon()
        self.fit()

    def fit(self) -> None:
        """Zoom so the whole capture fills the view (key F)."""
        self.view.autoRange(padding=0.02)

    def set_labels_visible(self, on: bool) -> None:
        """Show or hide the label layer (key H) to look at the tissue under it."""
        self.label_item.setVisible(bool(on))
        self._update_cursor()

    @property
    def labels_visible(self) -> bool:
        return self.label_item.isVisible()

    def _lut(self) -> np.ndarray:
        return class_table().lut(self._palette)

    def set_palette(self, palette: str) -> None:
        self._palette = palette
        self.label_item.setLookupTable(self._lut())

    def set_opacity(self, opacity: float) -> None:
        """Label layer opacity 0..1."""
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be within 0..1, got {opacity}")
        self.label_item.setOpacity(opacity)

    def set_display(self, mode: str) -> None:
        """``"filled"`` or ``"outline"`` (only the class borders are drawn)."""
        if mode not in (FILLED, OUTLINE):
            raise ValueError(f"display mode must be {FILLED!r} or {OUTLINE!r}, got {mode!r}")
        self.display = mode
        if self.editor is not None:
            h, w = self.editor.shape
            self._refresh_display(Rect(0, 0, h, w))
            self.label_item.update()

    def displayed_labels(self) -> np.ndarray:
        """The uint8 (H, W) class ids the label layer draws now (tests read it)."""
        return self._display.copy()

    def _refresh_display(self, rect: Rect) -> None:
        labels = self.editor.labels
        if self.display == FILLED:
            self._display[rect.slices] = labels[rect.slices]
            return
        # outline: a border pixel depends on its neighbours, so recompute one pixel around
        h, w = labels.shape
        grown = Rect(max(0, rect.top - 1), max(0, rect.left - 1), min(h, rect.bottom + 1), min(w, rect.right + 1))
        pad = Rect(max(0, grown.top - 1), max(0, grown.left - 1), min(h, grown.bottom + 1), min(w, grown.right + 1))
        block = labels[pad.slices]
        edge = _boundary(block)
        inner = (slice(grown.top - pad.top, grown.bottom - pad.top), slice(grown.left - pad.left, grown.right - pad.left))
        self._display[grown.slices] = np.where(edge[inner], block[inner], 0)

    def _on_edit(self, rect: Rect) -> None:
        if rect.empty or self._display is None:
            return
        self._refresh_display(rect)
        # the QImage wraps self._display: repaint only the touched rectangle
        self.label_item.update(QtCore.QRectF(rect.left - 1, rect.top - 1, rect.right - rect.left + 2,
                                             rect.bottom - rect.top + 2))
        self.changed.emit(rect)

    # ---- tools
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r} (known: {', '.join(TOOLS)})")
        if tool != POLYGON:
            self.cancel_polygon()
        self.tool = tool
        self._update_cursor()

    def pixel_at(self, pos: QtCore.QPointF) -> tuple[int, int]:
        """(row, col) of the pixel under an item position (x = col, y = row)."""
        return int(np.floor(pos.y())), int(np.floor(pos.x()))

    def press(self, pos: QtCore.QPointF, modifiers, screen_pos) -> None:
        if self.editor is None:
            return
        self._last_pos = pos
        if modifiers & QtCore.Qt.KeyboardModifier.AltModifier and self.tool in (BRUSH, ERASER):
            self._resize_from = (screen_pos.x(), self.diameter())
            return
        row, col = self.pixel_at(pos)
        if self.tool in (BRUSH, ERASER):
            self.editor.begin_stroke(row, col, tool=le.ERASER if self.tool == ERASER else le.BRUSH)
        elif self.tool == FILL:
            h, w = self.editor.shape
            if 0 <= row < h and 0 <= col < w:
                self.editor.flood_fill(row, col, confirm=self.confirm_fill)
        elif self.tool == POLYGON:
            self._polygon.append((pos.y(), pos.x()))
            self._update_polygon()
        self._update_cursor()

    def move(self, pos: QtCore.QPointF, screen_pos) -> None:
        if self.editor is None:
            return
        self._last_pos = pos
        if self._resize_from is not None:
            x0, d0 = self._resize_from
            self.set_diameter(int(round(d0 + (screen_pos.x() - x0) / 2)))
        elif self.editor.stroking:
            self.editor.stroke_to(*self.pixel_at(pos))
        self._update_cursor()

    def release(self, pos: QtCore.QPointF) -> None:
        if self.editor is None:
            return
        self._resize_from = None
        if self.editor.stroking:
            self.editor.stroke_to(*self.pixel_at(pos))
            self.editor.end_stroke()

    def double_click(self, pos: QtCore.QPointF) -> None:
        if self.tool == POLYGON:
            # Qt sends press, release, double-click: the first press usually added this
            # vertex already (close_polygon drops the duplicate), but not always (QTest)
            self._polygon.append((pos.y(), pos.x()))
            self.close_polygon()

    def hover(self, pos: QtCore.QPointF | None) -> None:
        self._last_pos = pos
        self._update_cursor()

    def refresh_cursor(self) -> None:
        """Redraw the brush cursor after a size, tool or class change."""
        self._update_cursor()

    # ---- polygon
    @property
    def polygon_vertices(self) -> list[tuple[float, float]]:
        return list(self._polygon)

    def close_polygon(self) -> Rect:
        """Fill the pending polygon (>= 3 vertices) with the active class; one undo step."""
        vertices, self._polygon = self._dedupe(self._polygon), []
        self._update_polygon()
        if len(vertices) < 3 or self.editor is None:
            return EMPTY_RECT
        return self.editor.fill_polygon(vertices)

    def cancel_polygon(self) -> None:
        self._polygon = []
        self._update_polygon()

    @staticmethod
    def _dedupe(vertices: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for v in vertices:
            if not out or abs(out[-1][0] - v[0]) > 1e-6 or abs(out[-1][1] - v[1]) > 1e-6:
                out.append(v)
        return out

    def _update_polygon(self) -> None:
        if self._polygon:
            ys, xs = zip(*(self._polygon + [self._polygon[0]]))
            self.polygon_item.setData(list(xs), list(ys))
        else:
            self.polygon_item.setData([], [])
        self.polygonChanged.emit(len(self._polygon))

    # ---- brush size and cursor
    def diameter(self) -> int:
        """Size (px) of the current tool: the eraser's when erasing, else the brush's."""
        if self.editor is None:
            return 1
        return self.editor.eraser_diameter if self.tool == ERASER else self.editor.brush_diameter

    def set_diameter(self, d: int) -> None:
        """Set the size of the current tool (brush or eraser), clamped to 1..MAX_DIAMETER."""
        if self.editor is None:
            return
        d = int(min(max(d, 1), MAX_DIAMETER))
        if self.tool == ERASER:
            self.editor.eraser_diameter = d
        else:
            self.editor.brush_diameter = d
        self._update_cursor()
        self.brushSizeChanged.emit(d)

    def _update_cursor(self) -> None:
        self._update_hud()
        show = (self._last_pos is not None and self.tool in (BRUSH, ERASER) and self.editor is not None
                and not self.space_held)
        if not show:
            self.cursor.hide()
            return
        # the footprint is centred on the pixel under the mouse (see core.labels.geometry.disc_footprint)
        d = self.diameter()
        row, col = self.pixel_at(self._last_pos)
        cy, cx = row + 0.5 - (0.5 if d % 2 == 0 else 0.0), col + 0.5 - (0.5 if d % 2 == 0 else 0.0)
        if self.tool == ERASER:
            colour, text = (255, 255, 255), "eraser"
        else:
            c = self.editor.active_class
            colour, text = class_table().colour(c, self._palette), f"{c} {class_table().by_id(c).name}"
        self.cursor.show(QtCore.QRectF(cx - d / 2, cy - d / 2, d, d), tuple(colour), text)

    def hud_text(self) -> str:
        """What the on-screen panel says: tool, its size, active class, hidden labels."""
        if self.editor is None:
            return ""
        c = self.editor.active_class
        parts = {BRUSH: f"Brush {self.editor.brush_diameter} px", ERASER: f"Eraser {self.editor.eraser_diameter} px",
                 FILL: "Fill", POLYGON: "Polygon"}[self.tool]
        parts += f"  ·  {c} {class_table().by_id(c).name}"
        if not self.labels_visible:
            parts += "  ·  labels hidden (H)"
        return parts

    def _update_hud(self) -> None:
        text = self.hud_text()
        self.hud.setText(text)
        self.hud.adjustSize()
        self.hud.setVisible(bool(text))

    # ---- Space + drag pans
    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        if ev.key() == QtCore.Qt.Key.Key_Space:
            if not ev.isAutoRepeat():
                self.set_space_held(True)
            ev.accept()
            return
        super().keyPressEvent(ev)

    def keyReleaseEvent(self, ev: QtGui.QKeyEvent) -> None:
        if ev.key() == QtCore.Qt.Key.Key_Space:
            if not ev.isAutoRepeat():
                self.set_space_held(False)
            ev.accept()
            return
        super().keyReleaseEvent(ev)

    def focusOutEvent(self, ev: QtGui.QFocusEvent) -> None:
        self.set_space_held(False)  # a release while another window had focus never arrives
        super().focusOutEvent(ev)

    def set_space_held(self, held: bool) -> None:
        """While Space is held a left drag pans instead of painting (open-hand cursor)."""
        self.space_held = held
        if held:
            self.viewport().setCursor(QtCore.Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().unsetCursor()
        self._update_cursor()

    def image_to_widget(self, y: float, x: float) -> QtCore.QPoint:
        """Widget (viewport) coordinates of image point (y=row, x=col); used by tests and benchmarks."""
        scene = self.view.mapViewToScene(QtCore.QPointF(x, y))
        return self.mapFromScene(scene)
