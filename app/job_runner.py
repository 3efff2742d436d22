"""Every GUI background job starts here, and every way it can end reaches the user.

:func:`run_job` is the one way a job starts (main window, retraining dialog and its cloud
page, settings dialog, registry view, model loader): a generator job (napari/superqt
``thread_worker`` style) in Qt's thread pool; what it yields goes to ``on_yield``
(progress), what it returns to ``on_return``, and an error to ``on_error`` (the caller's
own state, e.g. a check that must block Start) *and* to the one error sink
(:class:`app.notifications.ErrorSink`, the window's, found from ``owner``), as napari
routes every worker's errors.

:class:`JobRunner` (one job at a time for a window) drops what a replaced or cancelled job still delivers,
and routes errors to one handler, including an exception raised while
*handling* a result or a progress value in the GUI thread (a malformed endpoint
answer that only fails while being drawn): the busy state always ends and the
user always gets one message.

superqt takes any ``RuntimeError`` a job raises for "the worker was deleted" and
only warns, so a ``RecursionError`` (a ``RuntimeError``; e.g. from a model file
with absurdly nested metadata) would leave the app busy forever; :func:`surfacing`
re-raises those as :class:`JobCrashed` so they reach the error handler.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

from superqt.utils import GeneratorWorker, create_worker

from app.notifications import ErrorSink
from core.errors import NeuroHSIError


class JobCrashed(NeuroHSIError):
    """A background job failed with an unexpected ``RuntimeError`` (kept as ``__cause__``)."""

    def __init__(self, original: BaseException) -> None:
        self.original = original
        super().__init__(f"unexpected {type(original).__name__} in a background job: {original}")


def surfacing(job: Callable) -> Callable:
    """``job`` (a generator function) with every ``RuntimeError`` re-raised as :class:`JobCrashed`."""

    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return (yield from job(*args, **kwargs))
        except RuntimeError as exc:
            raise JobCrashed(exc) from exc

    return run


def sink_of(owner) -> ErrorSink | None:
    """The error sink of ``owner``'s window: the first ``sink`` up the parent chain (None without one)."""
    widget = owner
    while widget is not None:
        sink = getattr(widget, "sink", None)
        if isinstance(sink, ErrorSink):
            return sink
        widget = widget.parentWidget() if hasattr(widget, "parentWidget") else None
    return None


def run_job(
    job: Callable,
    *args,
    on_return: Callable[[object], None],
    on_yield: Callable[[object], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    on_finish: Callable[[], None] | None = None,
    owner=None,
    sink: ErrorSink | None = None,
    context: str | None = None,
    **kwargs,
) -> GeneratorWorker:
    """Run generator ``job(*args, **kwargs)`` in the thread pool; results come back on the GUI thread.

    An error goes to ``on_error`` (when given), then to ``sink`` (default: the one of
    ``owner``'s window) as one notice, prefixed with ``context``. Pass neither ``owner``
    nor ``sink`` only where ``on_error`` itself reports to the sink (:class:`JobRunner`).
    """
    sink = sink if sink is not None else sink_of(owner)

    def errored(exc: BaseException) -> None:
        if on_error is not None:
            on_error(exc)
        if sink is not None:
            sink.report(exc, context=context)

    worker = create_worker(surfacing(job), *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.yielded.connect(on_yield or (lambda _value: None))
    worker.returned.connect(on_return)
    worker.errored.connect(errored)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker


class JobRunner:
    """``start(kind, job, ...)`` / ``cancel()`` / ``busy``; callbacks get ``(kind, value)``."""

    def __init__(
        self,
        *,
        on_yield: Callable[[str, object], None],
        on_return: Callable[[str, object], None],
        on_error: Callable[[str, BaseException], None],
        on_busy: Callable[[bool, str | None], None],
    ) -> None:
        self._on_yield, self._on_return, self._on_error, self._on_busy = on_yield, on_return, on_error, on_busy
        self.worker = None
        self.kind: str | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, kind: str, job: Callable, *args, **kwargs) -> None:
        """Run ``job(*args, **kwargs)``; a job already running is cancelled quietly first."""
        self.cancel()
        holder: list = []

        def mine() -> bool:
            return bool(holder) and holder[0] is self.worker

        def guarded(handler: Callable, value, *, ends: bool) -> None:
            if not mine():
                return  # a replaced or cancelled job: its news is stale
            if ends:
                self._end()
            try:
                handler(kind, value)
            except Exception as exc:  # a bad value fails while handled: still one message, never stuck busy
                if not ends:
                    self.cancel()
                self._on_error(kind, exc)

        def on_error(exc: BaseException) -> None:
            if mine():
                self._end()
                self._on_error(kind, exc)

        worker = run_job(
            job, *args,
            on_yield=lambda v: guarded(self._on_yield, v, ends=False),
            on_return=lambda v: guarded(self._on_return, v, ends=True),
            on_error=on_error,
            **kwargs,
        )
        holder.append(worker)
        self.worker, self.kind = worker, kind
        worker.aborted.connect(lambda: self._end() if mine() else None)
        self._on_busy(True, kind)

    def cancel(self) -> str | None:
        """Ask the running job to stop at its next step; returns its kind (None when idle)."""
        worker, kind = self.worker, self.kind
        if worker is None:
            return None
        worker.quit()
        self._end()
        return kind

    def _end(self) -> None:
        if self.worker is None:
            return
        self.worker, self.kind = None, None
        self._on_busy(False, None)
