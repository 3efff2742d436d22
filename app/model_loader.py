"""Load torch and the configured model at start-up, on a worker, so the first map is instant.

The window shows at once; :class:`ModelLoader` runs :func:`preload_job` in the
thread pool (the same job runner as every other slow step) and reports its
state: ``"loading"``, ``"ready"`` (with the model), ``"missing"`` (no model: how
to fix it) or ``"failed"`` (the one-line reason). The model lands in the shared
per-file cache, so the first Classify finds it loaded and its kernels warm.
:class:`ModelIndicator` is the small readout in the status bar; :class:`ModelStoreWatcher`
notices when the installed model changes (``neurohsi model install`` in a terminal).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from core.errors import one_line

HOW_TO_FIX = "install a model in Settings ▸ Model (or Labels ▸ Retrain), or run make demo-model"
STORE_POLL_MS = 1000  # how often the installed-model store is checked (one stat of history.json)
WARMUP_SHAPE = (16, 16)  # pixels of the warm-up forward pass: kernels and thread pools start here


def model_hint(exc: BaseException) -> str | None:
    """For a classification that failed on the model: where to fix it (unless the message says already)."""
    from core.errors import ModelFileError

    if isinstance(exc, ModelFileError) and "Settings" not in str(exc):
        return f"Model problem — {HOW_TO_FIX}"
    return None


def preload_job(resolver: Callable[[], object]):
    """Worker job: ``resolver()`` (loads the model, cached), one tiny forward pass (a model that
    cannot run fails here), then one full-sensor map thrown away and one more pass of the
    network at that size, on every core as a click classifies; returns the model.

    The first click's classification took 53-75 ms after the tiny pass alone: the runtime
    makes its buffers on its first run at a size and plans its memory on the second, and the
    out-of-distribution check and uncertainty flag had never run. After this warm-up it takes
    what a later click does (GUI first click to map painted 70 ms, docs/benchmarks/live.md),
    for ~0.5 s more before the model is "ready" (the window is up long before).
    """
    yield "loading"  # a cancel point before the heavy imports
    model = resolver()
    from core.model.inference import predict_dense, warm_up

    info = model.info
    predict_dense(model.net, np.zeros((*WARMUP_SHAPE, info.n_bands), np.float32), padding=info.padding,
                  class_ids=info.class_ids)
    yield "warming"  # a cancel point
    try:
        if warm_up(model, threads=None, full_sensor=True) is not None:  # None: not a built-in profile
            yield "warming"
            from core.capture.camera_profiles import load_profile

            # The runtime's second run at the size real captures have.
            cube_shape = load_profile(info.profile_id).cube_shape
            predict_dense(model.net, np.zeros(cube_shape, np.float32), padding=info.padding, class_ids=info.class_ids)
    except Exception:  # noqa: BLE001 - only a head start: a real problem shows, reported, on the first click
        pass
    return model


class ModelLoader(QObject):
    """Loads the model in the background; ``changed(state, text)`` after every step."""

    changed = Signal(str, str)  # state, one line for the user

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self.text = ""
        self.model = None  # core.model.files.LoadedModel once ready
        self.error: BaseException | None = None
        self._worker = None

    def start(self, resolver: Callable[[], object] | None, *, source: object = None, missing_text: str = "") -> None:
        """Load with ``resolver`` (None: there is no model to load, say ``missing_text``).

        ``source`` (the model file) is named in a failure message that does not name it already.
        """
        from app.job_runner import run_job

        if self._worker is not None:
            self._worker.quit()
        self.model, self.error = None, None
        if resolver is None:
            self._set("missing", missing_text or f"No model — {HOW_TO_FIX}")
            return
        self._set("loading", "Loading model…")
        holder: list = []

        def mine() -> bool:
            # Not after the loader itself was deleted (its window destroyed without being closed,
            # while the full-size warm-up was still running): there is no one left to tell.
            return bool(holder) and holder[0] is self._worker and shiboken6.isValid(self)

        def done(model) -> None:
            if mine():
                self._worker, self.model = None, model
                self._set("ready", f"Model ready: {model.info.name} v{model.info.version}")

        def failed(exc: BaseException) -> None:
            if mine():
                self._worker, self.error = None, exc
                state = "missing" if "not found" in str(exc) or "missing" in str(exc) else "failed"
                text = one_line(exc)
                if source is not None and str(source) not in text:
                    text = f"{source}: {text}"
                if "Settings" not in text:
                    text += f" — {HOW_TO_FIX}"
                self._set(state, f"Model not usable: {text}")

        # No sink here: the loader's state (shown in the status bar) is how its failure is told.
        worker = run_job(preload_job, resolver, on_return=done, on_error=failed)
        holder.append(worker)
        self._worker = worker

    def shutdown(self, timeout_ms: int = 15_000) -> None:
        """Stop listening and wait for a load in flight (the process must not exit under a running thread)."""
        from PySide6.QtCore import QThreadPool

        worker, self._worker = self._worker, None
        if worker is not None:
            worker.quit()
            QThreadPool.globalInstance().waitForDone(timeout_ms)

    def _set(self, state: str, text: str) -> None:
        self.state, self.text = state, text
        self.changed.emit(state, text)


class ModelIndicator(QLabel):
    """"● Model ready: demo v1" in green, "○ Loading model…", or the problem in amber."""

    COLOURS = {"ready": "#6fdc6f", "loading": "#b8bec6", "idle": "#b8bec6", "missing": "#ffb000",
               "failed": "#ff7070"}
    MARKS = {"ready": "●", "loading": "○", "idle": "○", "missing": "✕", "failed": "✕"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model_indicator")
        self.show_state("idle", "")

    def show_state(self, state: str, text: str) -> None:
        short = text if len(text) <= 60 else text[:57] + "…"
        self.setText(f"{self.MARKS.get(state, '○')} {short}")
        self.setToolTip(text)
        self.setStyleSheet(f"color: {self.COLOURS.get(state, '#b8bec6')}; font-weight: bold;")


class ModelStoreWatcher(QObject):
    """Polls the installed-model store (:class:`core.model.installed.ModelStore`); ``changed`` on every change.

    A poll of history.json's (mtime, size), not QFileSystemWatcher: an atomic replace
    swaps the file a watcher follows, and one stat a second costs nothing.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None, *, models_dir=None, interval_ms: int = STORE_POLL_MS) -> None:
        from core.model.installed import ModelStore

        super().__init__(parent)
        self.store = ModelStore(models_dir)
        self.reconciled = self.store.reconcile()  # what a killed install left: temp files go, orphans are listed
        self._stamp = self.store.stamp()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> bool:
        """True (and ``changed`` emitted) when the store changed since the last check."""
        stamp = self.store.stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.changed.emit()
        return True
