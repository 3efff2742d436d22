"""Autosave of the labelling session: a timer on the GUI thread, the PNG encoded and written on a worker.

Every ``interval_ms`` (10 s by default, so a crash or kill loses at most the last
10 s of work) the timer copies the label map on the GUI thread (fast) and a
one-thread executor encodes and writes ``.labels.recovery.png``. A failed write
is reported on the GUI thread and retried at the next tick.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from PySide6 import QtCore

from app.labelling.session import LabellingSession

AUTOSAVE_MS = 10_000


class Autosaver(QtCore.QObject):
    """Writes the session's recovery file every ``interval_ms``; errors go to ``error_sink``."""

    _failed = QtCore.Signal(object)  # the exception, delivered on the GUI thread (queued)

    def __init__(self, parent: QtCore.QObject, error_sink: Callable[[BaseException], None],
                 interval_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(parent)
        self.session: LabellingSession | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="label-autosave")
        self._pending: Future | None = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave_async)
        self._failed.connect(error_sink, QtCore.Qt.ConnectionType.QueuedConnection)

    def start(self, session: LabellingSession) -> None:
        self.session = session
        self.timer.start()

    def stop(self) -> None:
        """Stop the timer and wait for a write in progress (its errors are reported)."""
        self.timer.stop()
        self.wait()
        self.session = None

    def autosave_async(self) -> None:
        """Copy the labels now, encode and write the recovery file on the worker thread."""
        session = self.session
        if session is None or (self._pending is not None and not self._pending.done()):
            return
        snapshot = session.autosave_snapshot()
        if snapshot is None:
            return
        self._pending = self._executor.submit(session.write_autosave, snapshot)
        self._pending.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        exc = future.exception()
        if exc is not None:
            self._failed.emit(exc)  # runs on the worker: the queued connection reports on the GUI thread

    def wait(self) -> None:
        """Block until the write in progress (if any) has finished."""
        pending, self._pending = self._pending, None
        if pending is not None:
            try:
                pending.result()
            except Exception:  # noqa: BLE001 - already reported through _failed
                pass

    def shutdown(self) -> None:
        self.stop()
        self._executor.shutdown(wait=True)
