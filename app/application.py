"""QApplication set-up: pyqtgraph options, the dark theatre theme, fonts (started by `neurohsi gui`)."""
from __future__ import annotations

import sys

from core.cpu import passive_openmp, reuse_freed_memory

passive_openmp()  # torch loads later, on the model-loading worker
reuse_freed_memory()  # each map (a click, live mode) reuses the last one's buffers

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

BASE_POINT_SIZE = 10
THEATRE_POINT_SIZE = 16  # readable from two metres on a 24" theatre screen

_configured = False


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with pyqtgraph row-major images and the dark theme."""
    global _configured
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    if not _configured:
        # Images everywhere are numpy (H, W[, C]) arrays: row-major, once, before any ImageItem.
        pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
        app.setApplicationName("NeuroHSI")
        app.setOrganizationName("NeuroHSI")
        apply_dark_theme(app)
        _configured = True
    return app


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a dark palette: less glare in a dimmed theatre, colours stand out."""
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1b1e22",
        QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#14171a",
        QPalette.ColorRole.AlternateBase: "#22262b",
        QPalette.ColorRole.ToolTipBase: "#2b3036",
        QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#2a2e34",
        QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff5555",
        QPalette.ColorRole.Highlight: "#2f7fd1",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#5fb3ff",
        QPalette.ColorRole.PlaceholderText: "#8a8f96",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6c7178"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6c7178"))
    app.setPalette(palette)
    set_font_size(app, BASE_POINT_SIZE)


def set_font_size(app: QApplication, point_size: int) -> None:
    font = QFont(app.font())
    font.setPointSize(point_size)
    app.setFont(font)


def apply_theatre_mode(app: QApplication, on: bool) -> None:
    """Larger fonts everywhere (controls grow with them)."""
    set_font_size(app, THEATRE_POINT_SIZE if on else BASE_POINT_SIZE)
