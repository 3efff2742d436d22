"""A colour bar with units for the confidence and P(class) views, beside the image.

It sits in the map area's layout to the right of the image view, never over the
map: in theatre mode (scale 2) a bar over the image hid a quarter of the tissue.

The heat map maps a probability in [0, 1] through :func:`app.overlay.heat_lut`;
the bar shows that ramp with ticks in percent and says what the colour means.
Hidden in the class-map view and before a map exists.
"""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QWidget

from app.overlay import heat_lut
from app.overlay_state import OverlayState
from core.classes import class_table

TICKS = (0, 25, 50, 75, 100)


def colour_bar_title(state: OverlayState) -> str:
    """What the heat colours mean, with the unit."""
    if state.view_mode == "confidence":
        return "Confidence (max probability, %)"
    if state.view_mode == "probability" and state.probability_class is not None:
        return f"P({class_table().by_id(state.probability_class).name}) (%)"
    return "Probability (%)"


class ColourBar(QWidget):
    """Vertical ramp (low at the bottom), ticks 0-100 %, and a title; ``scale`` 2 in theatre mode."""

    def __init__(self, state: OverlayState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("colour_bar")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.state = state
        self.scale = 1.0
        self.has_map = False
        self._lut = heat_lut()
        for name in ("view_mode", "probability_class", "visible"):
            state.on_change(name, self.refresh)
        self.refresh()

    def title(self) -> str:
        return colour_bar_title(self.state)

    def set_scale(self, scale: float) -> None:
        self.scale = float(scale)
        self.refresh()

    def set_has_map(self, has_map: bool) -> None:
        self.has_map = bool(has_map)
        self.refresh()

    def refresh(self, _value=None) -> None:
        self.setVisible(self.has_map and self.state.visible and self.state.view_mode != "classes")
        self._place()
        self.update()

    def _font(self) -> QFont:
        font = QFont(self.font())
        font.setPixelSize(int(round(13 * self.scale)))
        font.setBold(True)
        return font

    def _place(self) -> None:
        """Width for the title and ticks; the layout gives the height (the map's)."""
        metrics = QFontMetrics(self._font())
        width = max(int(90 * self.scale), metrics.horizontalAdvance(self.title()) + int(16 * self.scale))
        self.setFixedWidth(width)

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(0, 0, 0))
        font = self._font()
        painter.setFont(font)
        metrics = QFontMetrics(font)
        pad = int(8 * self.scale)
        painter.setPen(QPen(QColor("#ffffff")))
        painter.drawText(pad, pad + metrics.ascent(), self.title())
        top = pad * 2 + metrics.height()
        height = min(int(320 * self.scale), self.height() - top - pad - metrics.height() // 2)
        bar = QRect(pad, top, int(24 * self.scale), height)
        gradient = QLinearGradient(0, bar.bottom(), 0, bar.top())  # low at the bottom
        for i in range(0, 256, 32):
            r, g, b, _a = (int(v) for v in self._lut[i])
            gradient.setColorAt(i / 255.0, QColor(r, g, b))
        r, g, b, _a = (int(v) for v in self._lut[255])
        gradient.setColorAt(1.0, QColor(r, g, b))
        painter.fillRect(bar, gradient)
        for tick in TICKS:
            y = bar.bottom() - round(tick / 100 * bar.height())
            painter.drawLine(bar.right() + 2, y, bar.right() + pad, y)
            painter.drawText(bar.right() + pad + 4, y + metrics.ascent() // 2 - 1, f"{tick} %")
        painter.end()
