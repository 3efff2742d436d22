"""Warnings that must not be missed: a persistent high-contrast banner until acknowledged.

Other features raise them through ``MainWindow.show_warning(kind, text)``: the
remote endpoint failed and the map is local, capture quality, out-of-distribution
input, a stale map. One line per kind (a new warning of a kind replaces the old
one); the banner stays, in normal and theatre mode alike, until "Acknowledge".
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

WARNING_TITLES = {
    "remote": "Remote classification failed",
    "quality": "Capture quality",
    "ood": "Out of distribution",
    "stale": "Stale map",
    "model": "Model",
}
NORMAL_PX, THEATRE_PX = 15, 30  # text size; theatre is read from two metres


class WarningBanner(QFrame):
    """Black on amber, bold; lists the current warnings, one per kind."""

    acknowledged = Signal(object)  # the kinds acknowledged (tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("warning_banner")
        self.warnings: dict[str, str] = {}
        self.label = QLabel()
        self.label.setObjectName("warning_text")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.ack_button = QPushButton("Acknowledge")
        self.ack_button.setObjectName("warning_acknowledge")
        self.ack_button.setToolTip("I have seen these warnings: hide the banner")
        self.ack_button.clicked.connect(self.acknowledge)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.ack_button)
        self.set_large(False)
        self.hide()

    def set_large(self, large: bool) -> None:
        px = THEATRE_PX if large else NORMAL_PX
        self.setStyleSheet(
            f"QFrame#warning_banner {{ background: #ffb000; border: 3px solid #000000; }}"
            f"QLabel#warning_text {{ color: #000000; font-weight: bold; font-size: {px}px; }}"
            f"QPushButton#warning_acknowledge {{ font-size: {px}px; font-weight: bold; padding: 4px 12px; }}"
        )

    def show_warning(self, kind: str, text: str) -> None:
        """Add or replace the warning of ``kind`` (any short name; known ones get a title)."""
        if not kind or not str(kind).strip():
            raise ValueError("warning kind must be a non-empty name, e.g. 'remote'")
        self.warnings[str(kind)] = " ".join(str(text).split())
        self._refresh()

    def acknowledge(self, kinds=None) -> None:
        """Clear the given kinds (all by default); the banner hides when none is left."""
        gone = tuple(self.warnings) if kinds is None or isinstance(kinds, bool) else tuple(kinds)
        for kind in gone:
            self.warnings.pop(kind, None)
        self._refresh()
        self.acknowledged.emit(gone)

    def text(self) -> str:
        return self.label.text()

    def _refresh(self) -> None:
        self.label.setText("\n".join(
            f"⚠ {WARNING_TITLES.get(kind, kind.capitalize())}: {text}" for kind, text in self.warnings.items()))
        self.setVisible(bool(self.warnings))
