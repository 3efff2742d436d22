"""The one error sink of the GUI: every exception and notice goes through here.

``ErrorSink.report(exc)`` turns an exception into a :class:`Notice` (one line
naming the file and the problem, details on request) and shows it as a
non-modal message box; ``ErrorSink.note(text)`` puts a short notice in the status
bar. Message boxes are opened with ``open()`` (window-modal, non-blocking), so
tests never hang on them; set ``show_dialogs=False`` to keep them off screen.
Every notice is kept in ``history`` and emitted on ``notified``.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from core.errors import one_line

STATUS_TIMEOUT_MS = 8000


@dataclass(frozen=True)
class Notice:
    level: str  # "info", "warning" or "error"
    text: str  # one line: "<file>: <problem>" for file errors
    details: str = ""  # traceback or longer explanation, shown on request


class ErrorSink(QObject):
    """Turns exceptions into notices: status-bar notes or non-modal message boxes."""

    notified = Signal(object)  # Notice

    def __init__(self, parent: QWidget | None = None, *, show_dialogs: bool = True) -> None:
        super().__init__(parent)
        self._window = parent
        self.show_dialogs = show_dialogs
        self.status_bar: QStatusBar | None = None
        self.history: list[Notice] = []
        self.last_box: QMessageBox | None = None

    @property
    def last(self) -> Notice | None:
        return self.history[-1] if self.history else None

    def report(self, exc: BaseException, *, context: str | None = None, level: str = "error") -> Notice:
        """Show an exception as a message box naming the file and the problem."""
        text = one_line(exc)
        if context:
            text = f"{context}: {text}"
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        notice = Notice(level, text, details)
        self._emit(notice, dialog=True)
        return notice

    def note(self, text: str, *, level: str = "info", details: str = "", dialog: bool = False) -> Notice:
        """A short notice in the status bar (and a message box when ``dialog``)."""
        notice = Notice(level, " ".join(text.split()), details)
        self._emit(notice, dialog=dialog)
        return notice

    def _emit(self, notice: Notice, *, dialog: bool) -> None:
        self.history.append(notice)
        if self.status_bar is not None:
            self.status_bar.showMessage(notice.text, STATUS_TIMEOUT_MS)
        if dialog and self.show_dialogs:
            self._show_box(notice)
        self.notified.emit(notice)

    def _show_box(self, notice: Notice) -> None:
        icon = {"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning}.get(
            notice.level, QMessageBox.Icon.Information
        )
        box = QMessageBox(icon, "NeuroHSI", notice.text, QMessageBox.StandardButton.Ok, self._window)
        if notice.details:
            box.setDetailedText(notice.details)  # "Show Details..." button: details on request
        box.open()  # never exec(): the event loop (and any running classification) keeps going
        if self.last_box is not None and not self.last_box.isVisible():
            self.last_box.deleteLater()
        self.last_box = box
