"""Theatre mode: the map fills the screen, read from two metres.

:class:`TheatreOverlay` is drawn over the image: the model name and when the map
was made (and how long the user waited for it) in large type, and a large
legend (swatches :data:`SWATCH_PX` px, text of about :data:`CAP_HEIGHT_PX` px cap
height, i.e. 8 mm on a 24-inch 1080p screen). :class:`TheatreController` switches
the window to full screen with menus, toolbar, docks and status bar hidden,
remembers the normal layout, and restores it on the way out. The research-use
banner and the warning banner stay, in large type.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QRect, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QPushButton, QWidget

from app.image_view import OUTLINE_COLOUR
from app.overlay_state import OverlayState
from core.classes import class_table

SWATCH_PX = 44
CAP_HEIGHT_PX = 30
TITLE_CAP_HEIGHT_PX = 26


def font_with_cap_height(base: QFont, cap_px: int, *, bold: bool = True) -> QFont:
    """``base`` at the smallest pixel size whose capital letters are at least ``cap_px`` tall."""
    font = QFont(base)
    font.setBold(bold)
    size = max(int(cap_px / 0.72), 8)
    font.setPixelSize(size)
    while QFontMetrics(font).capHeight() < cap_px and size < 4 * cap_px:
        size += 1
        font.setPixelSize(size)
    return font


OOD_UNAVAILABLE_KEY = "ood_unavailable"  # legend row: the map's model cannot check for out-of-distribution pixels


class TheatreOverlay(QWidget):
    """Model line and large legend painted over the image view (transparent to the mouse)."""

    def __init__(self, state: OverlayState, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("theatre_overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.state = state
        self.model_line = "No map yet — press F5 to classify"
        self.busy_line: str | None = None  # the running job's progress (the status bar is hidden here)
        self.swatch_px = SWATCH_PX
        self.text_font = font_with_cap_height(self.font(), CAP_HEIGHT_PX)
        self.title_font = font_with_cap_height(self.font(), TITLE_CAP_HEIGHT_PX)
        self.swatch_rects: dict[object, QRect] = {}  # class id (or "outline", a flag key) -> where its swatch was painted
        self.rows: list | None = None  # core.output.legend.LegendRow list of the map on screen (None: no map)
        self.ood_unavailable = False  # the map's model cannot check for out-of-distribution pixels
        self.exit_button = QPushButton("Exit theatre (F11)", parent)
        self.exit_button.setObjectName("theatre_exit")
        self.exit_button.setStyleSheet("QPushButton { font-size: 20px; padding: 8px 14px; }")
        for name in ("palette", "hidden", "view_mode", "visible", "outline"):
            state.on_change(name, lambda _v: self.update())
        parent.installEventFilter(self)
        self.hide()
        self.exit_button.hide()

    def set_active(self, on: bool) -> None:
        self.setVisible(on)
        self.exit_button.setVisible(on)
        self._place()

    def set_model_line(self, text: str) -> None:
        self.model_line = text
        self.update()

    def set_rows(self, rows) -> None:
        """The legend model of the map on screen (shares, flag layers, hidden classes); None without a map."""
        self.rows = None if rows is None else list(rows)
        self.update()

    def set_ood_unavailable(self, unavailable: bool) -> None:
        """Whether the map on screen comes from a model that cannot check for out-of-distribution
        pixels: the large legend then says so, as the legend dock does."""
        self.ood_unavailable = unavailable
        self.update()

    def set_busy(self, text: str | None) -> None:
        """Show what the running job is doing (None when idle), under the model line."""
        self.busy_line = text
        self.update()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        self.setGeometry(parent.rect())
        self.exit_button.adjustSize()
        self.exit_button.move(parent.width() - self.exit_button.width() - 16,
                              parent.height() - self.exit_button.height() - 16)
        self.raise_()
        self.exit_button.raise_()

    def legend_rows(self) -> list[tuple[object, str, QColor]]:
        """``(key, text, colour)`` per legend row, from the legend model every export uses: each class
        with its share (a hidden class stays, marked hidden, so it never reads as "none of it"), or the
        tumour border in outline mode, then the flag layers (not measured, out of distribution,
        uncertain) with their shares; only the flags in the heat views (their colour bar explains them)."""
        state = self.state
        if not state.visible:
            return []
        table = class_table()
        rows = self.rows
        flags = [(r.key, r.text(), QColor(*r.colour)) for r in rows or () if r.is_flag]
        if self.ood_unavailable and rows is not None:  # silence would read as "all in distribution"
            flags.append((OOD_UNAVAILABLE_KEY, "Out-of-distribution check unavailable", QColor("#888888")))
        if state.view_mode != "classes":
            return flags
        if state.outline:
            return [("outline", "Tumour border", QColor(OUTLINE_COLOUR)), *flags]
        if rows is None:  # no map yet: the classes, as the legend dock lists them
            return [(t.id, t.name + (" (hidden)" if t.id in state.hidden else ""),
                     QColor(*table.colour(t.id, state.palette))) for t in table.classes]
        hidden = state.hidden
        classes = []
        for r in rows:
            if not r.is_flag:
                text = f"{r.name}{' (hidden)' if r.key in hidden else ''} {100.0 * r.fraction:.1f} %"
                classes.append((r.key, text, QColor(*table.colour(r.key, state.palette))))
        return classes + flags

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pad = 14
        # Model and map time, top left, on a dark plate so it reads over any tissue.
        painter.setFont(self.title_font)
        title = QFontMetrics(self.title_font)
        plate = QRect(pad, pad, title.horizontalAdvance(self.model_line) + 2 * pad, title.height() + pad)
        painter.fillRect(plate, QColor(0, 0, 0, 200))
        painter.setPen(QPen(QColor("#ffffff")))
        painter.drawText(plate.adjusted(pad, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, self.model_line)
        if self.busy_line:
            busy = f"{self.busy_line}… (Esc cancels)"
            below = QRect(pad, plate.bottom() + 6, title.horizontalAdvance(busy) + 2 * pad, title.height() + pad)
            painter.fillRect(below, QColor(0, 60, 120, 220))
            painter.drawText(below.adjusted(pad, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter, busy)
        # Legend, bottom left.
        self.swatch_rects = {}
        rows = self.legend_rows()
        if not rows:
            painter.end()
            return
        painter.setFont(self.text_font)
        metrics = QFontMetrics(self.text_font)
        row_h = max(self.swatch_px, metrics.height()) + 10
        width = self.swatch_px + 3 * pad + max(metrics.horizontalAdvance(text) for _k, text, _c in rows)
        box = QRect(pad, self.height() - pad - row_h * len(rows) - pad, width, row_h * len(rows) + pad)
        painter.fillRect(box, QColor(0, 0, 0, 200))
        for i, (key, text, colour) in enumerate(rows):
            top = box.top() + pad // 2 + i * row_h + (row_h - self.swatch_px) // 2
            swatch = QRect(box.left() + pad, top, self.swatch_px, self.swatch_px)
            hidden = key in self.state.hidden
            if hidden:  # an empty frame in the class colour: listed, not on the map
                painter.setPen(QPen(colour, 4))
                painter.drawRect(swatch.adjusted(2, 2, -2, -2))
            else:
                painter.fillRect(swatch, colour)
            if isinstance(key, str) and key != "outline":  # a flag layer: its hatch, as on the map
                painter.setPen(QPen(QColor("#ffffff"), 3))
                painter.drawLine(swatch.bottomLeft(), swatch.topRight())
            self.swatch_rects[key] = swatch
            painter.setPen(QPen(QColor("#888888") if hidden else QColor("#ffffff")))
            text_rect = QRect(swatch.right() + pad, box.top() + pad // 2 + i * row_h, width, row_h)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()


class TheatreController:
    """Full screen with only the map, the banners and the theatre overlay; restores the normal layout."""

    def __init__(self, window) -> None:
        self.window = window
        self.active = False
        self.normal_state: bytes | None = None  # saveState() of the normal layout while in theatre
        self.normal_geometry: bytes | None = None  # saveGeometry() of the normal window while in theatre
        self._was_maximised = False

    def set_active(self, on: bool) -> None:
        from app.settings import WINDOW_STATE_VERSION

        w = self.window
        on = bool(on)
        if on == self.active:
            return
        if on:
            self.normal_state = bytes(w.saveState(WINDOW_STATE_VERSION).data())
            self.normal_geometry = bytes(w.saveGeometry().data())
            self._was_maximised = w.isMaximized()
            for dock in w.docks.values():
                dock.hide()
            for bar in (w.toolbar, w.menuBar(), w.statusBar()):
                bar.hide()
            w.setWindowState(w.windowState() | Qt.WindowState.WindowFullScreen)
        else:
            w.menuBar().show()
            w.statusBar().show()
            if self.normal_state is not None:
                w.restoreState(self.normal_state, WINDOW_STATE_VERSION)
            w.toolbar.show()
            state = w.windowState() & ~Qt.WindowState.WindowFullScreen
            w.setWindowState(state | Qt.WindowState.WindowMaximized if self._was_maximised else state)
            self._restore_window(self.normal_geometry)
            for delay_ms in (0, 150, 400):  # again after the window system has applied a late full-screen change
                QTimer.singleShot(delay_ms, w, lambda g=self.normal_geometry: self._restore_window(g))
            self.normal_state = self.normal_geometry = None
        self.active = on
        w.map_area.set_theatre(on)
        w.trust.set_large(on)

    def _restore_window(self, geometry: bytes | None) -> None:
        """The window as it was before theatre mode: not full screen, its old size and place.

        Leaving full screen right after entering it once left the window full screen (the
        window system applied the entry after the exit), and once 1400 x 1003 with the status
        bar off-screen; so the normal geometry is put back, and checked again a little later.
        """
        w = self.window
        if self.active:
            return  # theatre mode again meanwhile
        if w.isFullScreen():
            w.setWindowState(w.windowState() & ~Qt.WindowState.WindowFullScreen)
        if self._was_maximised:
            if not w.isMaximized():
                w.showMaximized()
        elif geometry is not None and bytes(w.saveGeometry().data()) != geometry:
            w.restoreGeometry(geometry)
