"""Opening captures from the main window: the Open dialogs and the File ▸ Open recent menu.

Each opens through ``window.open_capture`` (a worker; the capture on screen stays until the
new one is ready). The folder offered first is that of the most recent capture.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMenu


def last_folder(settings) -> str:
    """Folder of the most recently opened capture ("" when none)."""
    recent = settings.get("recent_files")
    return str(Path(recent[0]).parent) if recent else ""


def open_capture_dialog(window) -> None:
    """File ▸ Open: a raw frame (references found by name) or a preprocessed cube."""
    path, _ = QFileDialog.getOpenFileName(
        window, "Open capture", window.last_folder(),
        "Captures (*.tif *.tiff *.mat *.npz);;Raw frame (*.tif *.tiff);;Preprocessed cube (*.mat *.npz)")
    if path:
        window.open_capture(path)


def open_with_references_dialog(window) -> None:
    """File ▸ Open with references: the raw frame, then its dark and white references."""
    raw, _ = QFileDialog.getOpenFileName(window, "Raw frame", window.last_folder(), "TIFF (*.tif *.tiff)")
    if not raw:
        return
    folder = str(Path(raw).parent)
    dark, _ = QFileDialog.getOpenFileName(window, "Dark reference", folder, "TIFF (*.tif *.tiff)")
    white, _ = QFileDialog.getOpenFileName(window, "White reference", folder, "TIFF (*.tif *.tiff)") if dark else ("", "")
    if dark and white:
        window.open_capture(raw, dark, white)


class RecentMenu(QMenu):
    """File ▸ Open recent: the settings' recent files, newest first (inserted before "Open with references")."""

    def __init__(self, window) -> None:
        super().__init__("Open &recent", window)
        self.setObjectName("menu_recent")
        self.window_ = window
        window.menus["&File"].insertMenu(window.actions["open_with_references"], self)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        files = self.window_.settings.get("recent_files")
        for path in files:
            action = self.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.window_.open_capture(p))
        self.setEnabled(bool(files))
