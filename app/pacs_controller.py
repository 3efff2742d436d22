"""The main window's PACS side: the outbox shown in the status bar and retried in the background.

Every ``RETRY_INTERVAL_MS`` the controller sends what the outbox has due (each item's
own backoff decides, :mod:`remote.pacs.outbox`) on a worker; the status bar says how
many objects wait. File ▸ PACS outbox lists them with "Send now". It also names the
operator chosen in Settings ▸ PACS for the audit log at start-up.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QPushButton, QVBoxLayout

from app.pacs_state import PacsSettingsState, export_job, flush_job
from app.job_runner import run_job
from core.audit.events import set_operator
from core.errors import one_line

RETRY_INTERVAL_MS = 30_000


class PacsController:
    def __init__(self, window) -> None:
        self.window = window
        self._worker = None  # a background flush
        self._export = None  # an export (and its send) started from the DICOM dialog
        set_operator(window.settings.get("operator_name"))
        self.label = QLabel("")
        self.label.setObjectName("pacs_outbox_label")
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QTimer(window)
        self.timer.setInterval(RETRY_INTERVAL_MS)
        self.timer.timeout.connect(self.retry)
        self.timer.start()
        self.refresh()

    def node(self, *, quiet: bool = False):
        """The configured node, or None (reported unless ``quiet``) when Settings ▸ PACS is empty or wrong."""
        state = PacsSettingsState.from_settings(self.window.settings)
        try:
            return state.node()
        except ValueError as exc:
            if not quiet:
                self.window.sink.report(exc, context="PACS")
            return None

    def waiting(self) -> list:
        from remote.pacs.outbox import Outbox

        return Outbox().items()

    def refresh(self) -> None:
        n = len(self.waiting())
        self.label.setText(f"PACS outbox: {n} waiting" if n else "")
        self.label.setVisible(bool(n))

    def retry(self, *, force: bool = False) -> None:
        """Send the due objects (all with ``force``) on a worker; quiet when nothing is due or one is running."""
        if self._worker is not None:
            return
        from remote.pacs.outbox import Outbox

        next_due = Outbox().next_due()
        if next_due is None or (not force and next_due > time.time()):
            self.refresh()
            return
        node = self.node(quiet=not force)
        if node is None:
            self.refresh()
            return
        self._worker = run_job(flush_job, node, force=force, on_yield=lambda _v: None,
                                 on_return=lambda report: self._flushed(report, node.label),
                                 on_error=self._failed)

    def export(self, state) -> None:
        """Run :func:`app.pacs_state.export_job` for the window's result (the DICOM dialog accepted)."""
        from app.build_info import app_version

        window = self.window
        node = self.node() if state.send else None
        if state.send and node is None:
            return
        self._export = run_job(
            export_job, window.result, state, capture_id=window.opened.capture.capture_id, node=node,
            palette=window.overlay_state.palette, opacity=window.overlay_state.opacity / 100.0,
            software_version=app_version(),
            on_yield=lambda text: window.statusBar().showMessage(str(text), 3000),
            on_return=self._exported, on_error=self._export_failed,
        )

    def idle(self) -> bool:
        return self._worker is None and self._export is None

    def _exported(self, outcome: dict) -> None:
        self._export = None
        text = "Wrote " + ", ".join(outcome["files"])
        if outcome["problem"]:
            self.window.sink.note(f"{text}. PACS: {outcome['problem']}; {outcome['waiting']} object(s) wait in the "
                                  "outbox and are sent when it answers", level="warning", dialog=True)
        else:
            self.window.sink.note(text + (f"; {outcome['sent']} sent to the PACS" if outcome["sent"] else ""))
        self.refresh()

    def _flushed(self, report, label: str) -> None:
        self._worker = None
        if report.sent:
            self.window.sink.note(report.line(label))
        self.refresh()

    def _failed(self, exc: BaseException) -> None:
        self._worker = None
        self.window.sink.report(exc, context="PACS")
        self.refresh()

    def _export_failed(self, exc: BaseException) -> None:
        self._export = None
        self.window.sink.report(exc, context="DICOM export")
        self.refresh()


def show_outbox(window) -> QDialog:
    """File ▸ PACS outbox: what waits, its tries and last problem; "Send now"."""
    dialog = QDialog(window)
    dialog.setWindowTitle("PACS outbox")
    dialog.setObjectName("pacs_outbox_dialog")
    listing = QListWidget()
    listing.setObjectName("pacs_outbox_list")

    def fill() -> None:
        listing.clear()
        now = time.time()
        for item in window.pacs.waiting():
            when = "due now" if item.due(now) else f"next try in {item.next_try_at - now:.0f} s"
            last = f" - {one_line(Exception(item.last_error))}" if item.last_error else ""
            listing.addItem(f"{item.kind or '?'} {item.capture or ''} ({item.attempts} tries, {when}){last}")
        if listing.count() == 0:
            listing.addItem("Nothing waiting: every export reached the PACS.")

    send = QPushButton("Send now")
    send.setObjectName("pacs_send_now")
    send.clicked.connect(lambda: (window.pacs.retry(force=True), fill()))
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(listing)
    layout.addWidget(send)
    layout.addWidget(buttons)
    fill()
    dialog.refresh = fill
    dialog.open()
    return dialog
