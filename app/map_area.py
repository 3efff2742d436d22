"""The centre of the main window: research-use banner, warning banner, then the empty state or the map.

Beside the image view sits the colour bar of the heat views (never over the map); over
it (children of its viewport), in theatre mode, the large legend and model line.
"""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QStackedWidget, QVBoxLayout, QWidget

from app.colour_bar import ColourBar
from app.empty_state import EmptyState
from app.image_view import ImageView
from app.overlay_state import OverlayState
from app.status_panel import ResearchBanner
from app.theatre import TheatreOverlay
from app.warning_banner import WarningBanner


class MapArea(QWidget):
    def __init__(self, state: OverlayState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.banner = ResearchBanner()
        self.warnings = WarningBanner()
        self.empty = EmptyState()
        self.image_view = ImageView(state=state)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.image_view)
        self.colour_bar = ColourBar(state)
        self.theatre = TheatreOverlay(state, self.image_view.viewport())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.warnings)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(self.stack, 1)
        row.addWidget(self.colour_bar)
        layout.addLayout(row, 1)

    def show_map(self, on: bool = True) -> None:
        """The image view (a capture is open) or the empty state."""
        self.stack.setCurrentWidget(self.image_view if on else self.empty)

    def set_theatre(self, on: bool) -> None:
        self.banner.set_large(on)
        self.warnings.set_large(on)
        self.colour_bar.set_scale(2.0 if on else 1.0)
        self.theatre.set_active(on)
