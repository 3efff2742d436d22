"""The main window's size and layout: first size on small screens, saved and restored with a version.

In theatre mode the layout to remember is the normal one (docks shown, not full
screen), which :class:`app.theatre.TheatreController` keeps while it is active.
"""
from __future__ import annotations

from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

from app.settings import WINDOW_STATE_VERSION, AppSettings


def fit_to_screen(window: QWidget, width: int, height: int) -> None:
    """Start at ``width`` x ``height`` px, or the screen's free area on a smaller screen (1280 x 800)."""
    screen = window.screen() or QApplication.primaryScreen()
    area = screen.availableGeometry() if screen is not None else None
    if area is not None and (area.width() < width or area.height() < height):
        width, height = min(width, area.width()), min(height, area.height() - 40)  # room for the title bar
    window.resize(width, height)


SHORT_SCREEN_PX = 900  # below this free height the three side panels do not fit one above the other


def fit_docks_to_screen(window: QMainWindow, lower: QDockWidget, upper: QDockWidget) -> None:
    """On a short screen (a 1280 x 800 theatre PC) ``lower`` goes into a tab behind ``upper``.

    Stacked, the legend, spectrum and capture panels need more height than such a screen has,
    and the window would grow past its bottom edge, hiding the status bar that names the model.
    """
    screen = window.screen() or QApplication.primaryScreen()
    if screen is not None and screen.availableGeometry().height() < SHORT_SCREEN_PX:
        window.tabifyDockWidget(upper, lower)
        upper.raise_()


def restore_layout(window: QMainWindow, settings: AppSettings) -> None:
    """Geometry, then docks and toolbars when saved by this layout version (a stale one is ignored)."""
    geometry = settings.get("window_geometry")
    if geometry:
        window.restoreGeometry(geometry)
    state = settings.get("window_state")
    if state and settings.get("window_state_version") == WINDOW_STATE_VERSION:
        window.restoreState(state, WINDOW_STATE_VERSION)


def save_layout(window: QMainWindow, settings: AppSettings, theatre=None) -> None:
    """Store geometry and state (the normal ones while ``theatre`` is active) with the layout version."""
    state = getattr(theatre, "normal_state", None) or bytes(window.saveState(WINDOW_STATE_VERSION).data())
    geometry = getattr(theatre, "normal_geometry", None) or bytes(window.saveGeometry().data())
    settings.set("window_geometry", geometry)
    settings.set("window_state", state)
    settings.set("window_state_version", WINDOW_STATE_VERSION)
    settings.sync()
