"""Live mode controller: runs a :class:`core.model.live.LivePipeline` for one main window.

The pipeline's callbacks come on its threads; they only emit Qt signals, which
Qt queues to the GUI thread, where the map is painted through the window's
``show_live(opened, result, started)`` hook. Stopping joins the pipeline's threads off the
GUI thread, so the window never waits on a capture being classified.
"""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from app.live.filmstrip import Filmstrip
from app.live.indicator import LiveIndicator
from app.live.quality_gate import LiveQualityGate

TICK_MS = 250  # indicator refresh


class LiveController(QObject):
    """File ▸ Watch folder…, the live indicator and the filmstrip of one main window."""

    result_ready = Signal(object)  # core.model.live.LiveResult (queued to the GUI thread)
    source_event = Signal(object)  # core.capture.source event
    capture_failed = Signal(str)  # one line
    shown = Signal(object)  # the LiveResult now on screen

    def __init__(self, window, *, stale_after_s: float | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.pipeline = None
        self.folder: Path | None = None
        self._last_reason: str | None = None
        self._newest = None  # the newest LiveResult the pipeline made (set on its thread)
        self._model_sha: str | None = None  # the model of the last live map (a change gets a banner)
        self.watch_action = QAction("&Watch folder…", window)
        self.watch_action.setObjectName("action_watch_folder")
        self.watch_action.setToolTip("Classify every new capture saved into a folder, hands-free")
        self.watch_action.triggered.connect(self.choose_folder)
        self.stop_action = QAction("Stop &watching", window)
        self.stop_action.setObjectName("action_stop_watching")
        self.stop_action.setEnabled(False)
        self.stop_action.triggered.connect(self.stop)
        file_menu = window.menus["&File"]
        before = next((a for a in file_menu.actions() if a.isSeparator()), None)
        file_menu.insertActions(before, [self.watch_action, self.stop_action])

        if stale_after_s is None:
            stale_after_s = float(window.settings.get("live_stale_after_s"))
        self.indicator = LiveIndicator(stale_after_s=stale_after_s)
        self.indicator.pause_toggled.connect(self.set_paused)
        self.indicator.hide()
        window.statusBar().insertPermanentWidget(0, self.indicator)  # stays visible beside notes
        self.filmstrip = Filmstrip()
        self.filmstrip.chosen.connect(lambda live: self._show(live, latest=False))
        self.dock = window.add_dock("Filmstrip", self.filmstrip, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.dock.hide()
        self.timer = QTimer(self, interval=TICK_MS)
        self.timer.timeout.connect(self.indicator.tick)
        self.gate = LiveQualityGate(window, self.indicator)  # quality checks and banners, as for one capture
        self.timer.timeout.connect(self.gate.tick)

        self.result_ready.connect(self._on_result)
        self.source_event.connect(self._on_event)
        self.capture_failed.connect(lambda line: window.sink.note(line, level="warning"))
        window.installEventFilter(self)

    # ---------------------------------------------------------------- control

    @property
    def watching(self) -> bool:
        return self.pipeline is not None

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Watch folder", str(self.folder or ""))
        if folder:
            self.start(folder)

    def start(self, folder: str | Path) -> bool:
        """Watch ``folder``; False (with a message) when it cannot be watched or no model can be chosen."""
        from core.capture.source import WatchedFolder
        from core.model.live import LivePipeline, describe_error

        self.stop()
        try:
            classify = self._classifier()
            source = WatchedFolder(folder)
        except (OSError, ValueError) as exc:
            self.window.sink.report(exc)
            return False
        self.folder = Path(folder)
        self.pipeline = LivePipeline(
            source,
            classify,
            on_result=self._post,
            on_event=self.source_event.emit,
            on_error=lambda cid, exc: self.capture_failed.emit(describe_error(cid, exc)),
        ).start()
        self.indicator.pause_button.setChecked(False)
        self.gate.started()
        self.indicator.show()
        self.dock.show()
        self.timer.start()
        self.stop_action.setEnabled(True)
        self.window.sink.note(f"Watching {self.folder} for new captures")
        return True

    def stop(self) -> None:
        """Stop watching; the pipeline's threads finish off the GUI thread."""
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is None:
            return
        threading.Thread(target=pipeline.stop, name="neurohsi-live-stop", daemon=True).start()
        self.timer.stop()
        self.indicator.hide()
        self.stop_action.setEnabled(False)
        self.window.sink.note(f"Stopped watching {self.folder}")

    def set_paused(self, paused: bool) -> None:
        if self.pipeline is not None:
            (self.pipeline.pause if paused else self.pipeline.resume)()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if watched is self.window and event.type() == QEvent.Type.Close:
            self.stop()
        return False

    def _classifier(self):
        """Local with the window's model, or its endpoint with its fallback and deadline settings
        (:func:`remote.remote_or_local.live_classifier`, as ``neurohsi watch``)."""
        from core.model.choice import resolve_model
        from remote.remote_or_local import live_classifier

        window = self.window
        return live_classifier(lambda: resolve_model(window.model_override),
                               endpoint=window.remote_target(), fallback_local=bool(window.settings.get("fallback_local")),
                               policy=window.remote_policy())

    # ---------------------------------------------------------------- painting

    def _post(self, live) -> None:
        """On the classifier thread: remember the newest map, then queue it to the GUI thread."""
        self._newest = live  # one reference assignment: atomic
        self.result_ready.emit(live)

    def _on_result(self, live) -> None:
        if self.pipeline is None:
            return  # stopped meanwhile
        from core.output.render import colour_map

        self.filmstrip.add(live, colour_map(live.result.labels, palette=self.window.settings.get("palette")))
        if self._newest is not None and live is not self._newest:
            return  # a newer map is already queued behind this one: paint only that (the GUI thread fell behind)
        self._say_model_change(live.result.model)
        if self._show(live, latest=True):
            self.indicator.map_shown(live.complete_at, self.pipeline.stats.rate_per_s())
        else:  # unusable: the folder is alive, but the map on screen is still the older one
            self.indicator.capture_seen(live.complete_at)
        if live.fallback_reason != self._last_reason and live.fallback_reason is not None:
            self.window.sink.note(f"Endpoint failed ({live.fallback_reason}); classifying locally", level="warning")
        self._last_reason = live.fallback_reason

    def _say_model_change(self, info) -> None:
        """A banner when this session's map comes from another model than the last one (an install or revert)."""
        previous, self._model_sha = self._model_sha, info.sha256
        if previous is not None and previous != info.sha256:
            self.window.show_warning("model", f"Model changed: live maps now come from {info.name} v{info.version}")

    def _show(self, live, *, latest: bool) -> bool:
        """Paint ``live``; False when its capture was unusable and the last good map stays instead."""
        import time

        # The window shows how long the map took: file found complete -> map, also when stepping back.
        started = live.complete_at if latest else time.perf_counter() - live.latency_s
        if latest and not self.gate.admit(live):  # unusable: the last good map stays, dimmed, with why
            self.shown.emit(live)
            return False
        self.window.show_live(live.prepared, live.result, started)
        self.shown.emit(live)
        return True

    def _on_event(self, event) -> None:
        import time

        from core.capture.source import ReferencesChanged, Skipped, SourceProblem

        if isinstance(event, ReferencesChanged):
            verb = "References" if event.replaced is None else "New references"
            self.window.sink.note(f"{verb}: {event.references.name}")
        elif isinstance(event, Skipped):
            self.indicator.capture_seen(time.perf_counter())
        elif isinstance(event, SourceProblem):
            self.window.sink.note(event.message, level="warning")


def install_live(window) -> LiveController:
    """Add live mode to ``window`` (an ``app.main_window.MainWindow``)."""
    controller = LiveController(window)
    window.live = controller
    return controller
