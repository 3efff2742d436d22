"""Warnings that must not be missed: a persistent high-contrast banner until acknowledged.

Other features raise them through ``MainWindow.show_warning(kind, text)``: the
remote endpoint failed and the map is local, capture quality, out-of-distribution
input, a stale map. One line per kind (a new warning of a kind replaces the old
one); the banner stays, in normal and theatre mode alike, until "Acknowledge".

Every warning names its capture (when it is about one) and the time it was raised;
:meth:`WarningBanner.capture_changed` drops the warnings of any other capture, so a
banner never sits over a capture it is not about.
"""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

WARNING_TITLES = {
    "remote": "Remote classification failed",
    "quality": "Capture quality",
    "ood": "Out of distribution",
    "stale": "Stale map",
    "model": "Model",
    "live": "Live capture unusable",
}
# Warnings about one capture: bound to the capture on screen when raised (app.main_window.show_warning).
CAPTURE_BOUND = frozenset({"quality", "ood", "remote", "live"})
NORMAL_PX, THEATRE_PX = 15, 30  # text size; theatre is read from two metres


class WarningBanner(QFrame):
    """Black on amber, bold; lists the current warnings, one per kind."""

    acknowledged = Signal(object)  # the kinds acknowledged (tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("warning_banner")
        self.warnings: dict[str, str] = {}
        self.sources: dict[str, tuple[str | None, str]] = {}  # kind -> (capture id or None, local HH:MM:SS)
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

    def show_warning(self, kind: str, text: str, *, capture: str | None = None) -> None:
        """Add or replace the warning of ``kind`` (any short name; known ones get a title), about
        ``capture`` (its id; None: not about one capture), stamped with the time now."""
        if not kind or not str(kind).strip():
            raise ValueError("warning kind must be a non-empty name, e.g. 'remote'")
        self.warnings[str(kind)] = " ".join(str(text).split())
        self.sources[str(kind)] = (capture, datetime.now().strftime("%H:%M:%S"))
        self._refresh()

    def capture_changed(self, capture: str | None) -> tuple[str, ...]:
        """Another capture is on screen: drop the warnings about any other one; returns their kinds."""
        gone = tuple(k for k, (about, _at) in self.sources.items() if about is not None and about != capture)
        for kind in gone:
            self.warnings.pop(kind, None)
            self.sources.pop(kind, None)
        if gone:
            self._refresh()
        return gone

    def acknowledge(self, kinds=None) -> None:
        """Clear the given kinds (all by default); the banner hides when none is left."""
        gone = tuple(self.warnings) if kinds is None or isinstance(kinds, bool) else tuple(kinds)
        for kind in gone:
            self.warnings.pop(kind, None)
            self.sources.pop(kind, None)
        self._refresh()
        self.acknowledged.emit(gone)

    def text(self) -> str:
        return self.label.text()

    def line(self, kind: str) -> str:
        """The banner line of ``kind``: title, text, then which capture and when."""
        about, at = self.sources.get(kind, (None, ""))
        where = f" [{about}, {at}]" if about else f" [{at}]" if at else ""
        return f"⚠ {WARNING_TITLES.get(kind, kind.capitalize())}: {self.warnings[kind]}{where}"

    def _refresh(self) -> None:
        self.label.setText("\n".join(self.line(kind) for kind in self.warnings))
        self.setVisible(bool(self.warnings))
