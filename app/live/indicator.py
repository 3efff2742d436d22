"""The live indicator: capture rate, how old the map on screen is, a stale-map warning, pause/resume."""
from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

STALE_AFTER_S = 10.0  # no new capture for this long while watching: say the map may be out of date


class LiveIndicator(QWidget):
    """"● Live · 4.8 captures/s · map 0.4 s old"; red with a warning when stale. Refreshed by :meth:`tick`."""

    pause_toggled = Signal(bool)  # True: paused

    def __init__(self, parent: QWidget | None = None, *, stale_after_s: float = STALE_AFTER_S) -> None:
        super().__init__(parent)
        self.setObjectName("live_indicator")
        self.stale_after_s = stale_after_s
        self.label = QLabel("")
        self.label.setObjectName("live_label")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("live_pause")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause live mode: keep this map; resume takes the newest capture")
        self.pause_button.toggled.connect(self._toggled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.pause_button)
        self.map_at: float | None = None  # perf_counter of the capture file behind the map shown
        self.last_capture_at: float | None = None  # perf_counter of the newest capture seen
        self.started_at = time.perf_counter()
        self.rate = 0.0
        self.stale = False

    def _toggled(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)
        self.tick()

    def map_shown(self, complete_at: float, rate: float) -> None:
        """A new map of the capture found complete at ``complete_at`` is on screen."""
        self.map_at = self.last_capture_at = complete_at
        self.rate = rate
        self.tick()

    def capture_seen(self, at: float) -> None:
        """A capture arrived (classified or skipped): the folder is alive."""
        self.last_capture_at = at

    def tick(self, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        paused = self.pause_button.isChecked()
        since = now - (self.last_capture_at if self.last_capture_at is not None else self.started_at)
        self.stale = not paused and since >= self.stale_after_s
        age = "no map yet" if self.map_at is None else f"map {now - self.map_at:.1f} s old"
        state = "⏸ Paused" if paused else "● Live"
        text = f"{state} · {self.rate:.1f} captures/s · {age}"
        if self.stale:
            text += f" · no new capture for {since:.0f} s — map may be out of date"
        self.label.setText(text)
        colour = "#c62828" if self.stale else "#9e9e9e" if paused else "#2e7d32"
        self.label.setStyleSheet(f"QLabel#live_label {{ color: {colour}; font-weight: bold; }}")
