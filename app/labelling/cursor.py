"""The brush / eraser cursor of the labelling canvas: a two-tone footprint outline and the active class.

The outline is drawn twice, a 3 px dark ring under a 1.5 px light one (white for
the eraser, the class colour for the brush), so it stays visible on pale tissue,
on dark vessels and on every class colour. Beside it a small label names the
active class (or "eraser"), so the user never paints with the wrong class.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

DARK = (0, 0, 0)
LIGHT = (255, 255, 255)


class BrushCursor:
    """Items added to ``view`` (a pyqtgraph ViewBox); positions are image coordinates (x = col, y = row)."""

    def __init__(self, view: pg.ViewBox) -> None:
        self.dark = QtWidgets.QGraphicsEllipseItem()
        self.light = QtWidgets.QGraphicsEllipseItem()
        self.dark.setPen(pg.mkPen(DARK, width=3.0, cosmetic=True))
        self.light.setPen(pg.mkPen(LIGHT, width=1.5, cosmetic=True))
        # text drawn at screen size whatever the zoom, on a dark plate for contrast
        self.label = pg.TextItem(color=LIGHT, anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 170))
        for z, item in enumerate((self.dark, self.light, self.label)):
            item.setZValue(3 + z)
            item.setVisible(False)
            view.addItem(item)

    def show(self, rect: QtCore.QRectF, colour: tuple[int, int, int], text: str) -> None:
        """Outline ``rect`` (the footprint's bounding square) in ``colour`` over a dark ring; ``text`` beside it."""
        self.dark.setRect(rect)
        self.light.setRect(rect)
        self.light.setPen(pg.mkPen(colour, width=1.5, cosmetic=True))
        self.label.setText(text)
        self.label.setColor(colour)
        self.label.setPos(rect.right(), rect.top())
        for item in (self.dark, self.light, self.label):
            item.setVisible(True)

    def hide(self) -> None:
        for item in (self.dark, self.light, self.label):
            item.setVisible(False)

    @property
    def visible(self) -> bool:
        return self.light.isVisible()

    def rect(self) -> QtCore.QRectF:
        return self.light.rect()

    def colours(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(outer ring, inner ring) RGB colours (tests check the two tones differ)."""
        outer, inner = self.dark.pen().color(), self.light.pen().color()
        return (outer.red(), outer.green(), outer.blue()), (inner.red(), inner.green(), inner.blue())
