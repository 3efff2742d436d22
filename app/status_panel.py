"""Status widgets: the research-use banner and the model / source / timings readout."""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

BANNER_TEXT = "Research use only — not for diagnostic use"


def _local_time(iso: str) -> str:
    """``HH:MM:SS`` local time of an ISO 8601 timestamp (the text itself if it does not parse)."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso


class ResearchBanner(QLabel):
    """Persistent banner: the map supports, never replaces, the surgeon's judgement."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(BANNER_TEXT, parent)
        self.setObjectName("research_banner")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.set_large(False)

    def set_large(self, large: bool) -> None:
        """Theatre mode: the notice stays, in type read from two metres."""
        px = 26 if large else 13
        self.setStyleSheet(
            "QLabel#research_banner { background: #5c3b00; color: #ffd27a; font-weight: bold; padding: 4px;"
            f" font-size: {px}px; }}"
        )


class ElidedLabel(QLabel):
    """A label that shortens its text with "…" when squeezed (full text in the tooltip), so status
    texts next to it are never cut or drawn over each other."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self.full_text = str(text)
        self.setToolTip(self.full_text)
        self._elide()

    def text(self) -> str:
        return self.full_text

    def sizeHint(self):  # noqa: N802 - Qt's name
        hint = super().sizeHint()
        hint.setWidth(self.fontMetrics().horizontalAdvance(self.full_text) + 8)
        return hint

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight, max(self.width(), 40))
        QLabel.setText(self, shown)


PROGRESS_MIN_WIDTH, PROGRESS_MAX_WIDTH = 160, 360  # px: the progress bar, sized to its text between these


class StatusPanel(QWidget):
    """Model identity, where the map came from, per-stage timings, progress and cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # The model and source texts give way ("…", full text in the tooltip); the timing never does.
        self.model_label = ElidedLabel("Model: —")
        self.model_label.setObjectName("status_model")
        self.source_label = ElidedLabel("")
        self.source_label.setObjectName("status_source")
        self.timings_label = QLabel("")
        self.timings_label.setObjectName("status_timings")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedWidth(PROGRESS_MIN_WIDTH)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("status_cancel")
        self.cancel_button.setToolTip("Cancel the running job")
        self.cancel_button.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget, stretch in ((self.model_label, 3), (self.source_label, 2), (self.timings_label, 0),
                                (self.progress, 0), (self.cancel_button, 0)):
            layout.addWidget(widget, stretch)
        # As tall with the progress bar and Cancel as without: showing them for a job must not
        # shrink the image above by a few pixels (a jump, and a full repaint of the view, per click).
        self.setMinimumHeight(max(w.sizeHint().height() for w in (self.progress, self.cancel_button, self.model_label)))

    def show_model(self, info, source: str, *, classified_at: str | None = None) -> None:
        """The map on screen came from ``info`` (a :class:`core.model.files.ModelInfo`), run at ``source``
        ("local" or the endpoint URL) at ``classified_at`` (ISO 8601 UTC), shown in local time."""
        trained = f" · trained {info.created[:10]}" if getattr(info, "created", "") else ""
        self.model_label.setText(f"Model: {info.name} v{info.version} · sha256 {info.sha256[:12]}{trained}")
        where = "Local" if source == "local" else f"Remote: {source}"
        self.source_label.setText(f"{where} · map of {_local_time(classified_at)}" if classified_at else where)

    def show_no_map(self) -> None:
        """A new capture is on screen and not classified yet: no model is credited with a map."""
        self.model_label.setText("Not classified yet")
        self.source_label.setText("")

    def show_waited(self, waited_s: float, timings_s: dict[str, float], *, verb: str = "Map") -> None:
        """The wall time from the click to the result on screen ("Map in 180 ms"); stages only in the tooltip."""
        self.timings_label.setText(f"{verb} in {1000 * waited_s:.0f} ms")
        self.timings_label.setMinimumWidth(self.timings_label.sizeHint().width())  # never cut ("…1887 m")
        stages = " · ".join(f"{k} {1000 * v:.0f} ms" for k, v in timings_s.items())
        self.timings_label.setToolTip(f"From the click to the result on screen. Stages: {stages}")

    def show_withheld(self, reason: str, *, shown: bool = False) -> None:
        """A map was made but is not shown (an unusable capture; ``shown``: shown anyway, watermarked):
        never say "Map in N ms" as if it were a normal map."""
        self.timings_label.setText("Unusable capture: map shown anyway" if shown else "No map shown: capture unusable")
        self.timings_label.setMinimumWidth(self.timings_label.sizeHint().width())
        self.timings_label.setToolTip(reason)

    def theatre_line(self, result, waited_s: float) -> str:
        """Model and map time for theatre mode's large type."""
        when = f" · map of {_local_time(result.classified_at)}" if result.classified_at else ""
        where = "local" if result.source == "local" else "remote"
        return f"{result.model.name} v{result.model.version}{when} · {1000 * waited_s:.0f} ms · {where}"

    def set_busy(self, text: str | None, fraction: float = 0.0) -> None:
        """Show progress (``text`` not None) with the cancel button, or hide both."""
        busy = text is not None
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setValue(int(100 * fraction))
            self.progress.setFormat(f"{text} %p%")
            # Wide enough for the whole text on one line ("Classifying locally 100%" wrapped and was
            # cut in the 160 px bar); the model and source labels give way, elided.
            needed = self.progress.fontMetrics().horizontalAdvance(f"{text} 100%") + 24
            self.progress.setFixedWidth(min(max(needed, PROGRESS_MIN_WIDTH), PROGRESS_MAX_WIDTH))
