"""The filmstrip: thumbnails of the last maps; clicking one steps back to it."""
from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

FILMSTRIP_LENGTH = 20
THUMB_HEIGHT = 64


def thumbnail(rgb: np.ndarray, height: int = THUMB_HEIGHT) -> QPixmap:
    """A ``height``-pixel-high pixmap of an RGB ``uint8 (H, W, 3)`` image (nearest-neighbour steps)."""
    step = max(1, rgb.shape[0] // height)
    small = np.ascontiguousarray(rgb[::step, ::step])
    image = QImage(small.data, small.shape[1], small.shape[0], 3 * small.shape[1], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class Filmstrip(QListWidget):
    """The last :data:`FILMSTRIP_LENGTH` live maps, newest on the left. Holds the items it shows, no more."""

    chosen = Signal(object)  # the LiveResult of the clicked thumbnail

    def __init__(self, parent: QWidget | None = None, *, length: int = FILMSTRIP_LENGTH) -> None:
        super().__init__(parent)
        self.setObjectName("live_filmstrip")
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(2 * THUMB_HEIGHT, THUMB_HEIGHT))
        self.setFixedHeight(THUMB_HEIGHT + 40)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.length = length
        self.entries: deque = deque(maxlen=length)
        self.itemClicked.connect(self._clicked)

    def add(self, live, overlay_rgb: np.ndarray) -> None:
        """Put ``live`` (a :class:`core.model.live.LiveResult`) first, its thumbnail from ``overlay_rgb``."""
        self.entries.appendleft(live)
        item = QListWidgetItem(QIcon(thumbnail(overlay_rgb)), live.prepared.capture.capture_id)
        quality = getattr(getattr(live.prepared, "quality", None), "status", None)
        tip = f"{live.prepared.capture.capture_id} · {live.result.model.label} · {live.result.source}"
        item.setToolTip(tip + (f" · quality {quality}" if quality else ""))
        self.insertItem(0, item)
        while self.count() > self.length:
            self.takeItem(self.count() - 1)

    def _clicked(self, item: QListWidgetItem) -> None:
        self.chosen.emit(self.entries[self.row(item)])
