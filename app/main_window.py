"""The main window: open a capture, classify it, inspect and export the map.

Layout: research-use banner and the image view in the centre; legend, spectrum
and capture metadata in docks on the right; model identity, source, timings,
progress and cancel in the status bar. All slow work runs in :mod:`app.workers`;
every error goes to the one :class:`app.notifications.ErrorSink`. What the
overlay shows lives in one Qt-free :class:`app.overlay_state.OverlayState`
(``window.overlay_state``) that the view, legend, toolbar controls, exports and
settings bind to; exports are in :mod:`app.export_controller` (``window.exports``),
the toolbar's overlay controls in :mod:`app.view_controls`, the centre (banners,
empty state, map, colour bar, theatre overlay) in :mod:`app.map_area`, theatre
mode in :mod:`app.theatre`, the start-up model load in :mod:`app.model_loader`,
and the one-job-at-a-time runner in :mod:`app.job_runner`.

Warnings that must not be missed (remote failed, quality, out-of-distribution,
stale map) go through ``window.show_warning(kind, text)``: a persistent banner
until acknowledged.

Extension point (labelling mode, retraining dialog): call
``window.add_dock(title, widget)`` to add a dock (returns the ``QDockWidget``;
its toggle action is listed under View), ``window.add_menu(title)`` for a menu of
your own actions, and listen to ``capture_opened`` / ``classified`` for the
current :class:`app.workers.OpenedCapture` and classification result
(``window.opened`` / ``window.result`` hold the latest ones).
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QMenu, QToolBar, QWidget

from app import workers
from app.actions import build_actions, populate_menus, populate_toolbar
from app.dropped_files import capture_from_mime
from app.export_controller import ExportController
from app.job_runner import JobRunner
from app.legend_panel import LegendPanel
from app.map_area import MapArea
from app.metadata_panel import MetadataPanel
from app.model_loader import ModelIndicator, ModelLoader, ModelStoreWatcher, model_hint
from app.notifications import ErrorSink
from app.open_dialogs import RecentMenu, last_folder, open_capture_dialog
from app.overlay_state import OverlayState
from app.pacs_controller import PacsController
from app.settings import AppSettings
from app.spectrum_panel import SpectrumPanel
from app.status_panel import StatusPanel
from app.theatre import TheatreController
from app.trust_view import TrustView
from app.view_controls import ViewControls, bind_checkable, persist_overlay
from app.window_layout import fit_docks_to_screen, fit_to_screen, restore_layout, save_layout


class MainWindow(QMainWindow):
    """Theatre view of one capture and its classification map."""

    capture_opened = Signal(object)  # app.workers.OpenedCapture
    classified = Signal(object)  # core.model.inference.ClassificationResult
    job_failed = Signal(object)  # the exception of a failed open/classify job
    busy_changed = Signal(bool)
    map_shown = Signal(float)  # seconds from the Classify click to the map painted
    model_changed = Signal()  # the installed model changed (here or by the CLI): live mode says so

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        sink: ErrorSink | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("NeuroHSI")
        self.setObjectName("main_window")
        self.settings = settings if settings is not None else AppSettings()
        self.sink = sink if sink is not None else ErrorSink(self)
        self.sink.status_bar = self.statusBar()
        self.model_override = None if model_path is None else Path(model_path)
        self.opened: workers.OpenedCapture | None = None
        self.before_open: list = []  # callables asked before another capture opens; False cancels (unsaved labels)
        self.result = None
        self.jobs = JobRunner(on_yield=self._job_yielded, on_return=self._job_returned,
                              on_error=self._job_failed, on_busy=self._job_busy)
        self._job_context: tuple = (None, 0.0)  # (capture open when the job started, its start time)
        self.overlay_state = OverlayState()
        persist_overlay(self.overlay_state, self.settings)
        self.exports = ExportController(self)

        self.map_area = MapArea(self.overlay_state)
        self.banner, self.warnings = self.map_area.banner, self.map_area.warnings
        self.image_view = self.map_area.image_view
        self.setCentralWidget(self.map_area)

        self.legend = LegendPanel(state=self.overlay_state)
        self.spectrum = SpectrumPanel()
        self.metadata = MetadataPanel()
        self.docks: dict[str, QDockWidget] = {}
        self.actions = build_actions(self)
        self.menus = populate_menus(self, self.actions)
        self.recent_menu = RecentMenu(self)
        self.add_dock("Legend", self.legend)
        self.add_dock("Spectrum", self.spectrum)
        self.add_dock("Capture", self.metadata)

        self.toolbar = QToolBar("Main")
        self.toolbar.setObjectName("toolbar_main")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(self.toolbar)
        populate_toolbar(self.toolbar, self.actions)
        self.addActions(list(self.actions.values()))  # keys work with the menus and toolbar hidden (theatre)
        self.view_controls = ViewControls(self.toolbar, self.overlay_state)
        for name, field in (("contour", "contour"), ("outline", "outline"), ("overlay", "visible")):
            bind_checkable(self.actions[name], self.overlay_state, field)

        self.status = StatusPanel()
        self.model_indicator = ModelIndicator()
        self.statusBar().addPermanentWidget(self.status)
        self.statusBar().addPermanentWidget(self.model_indicator)
        self.status.cancel_button.clicked.connect(self.cancel_job)
        self.model_loader = ModelLoader(self)
        self.model_loader.changed.connect(self._model_state)
        self.theatre = TheatreController(self)
        self.trust = TrustView(self)  # quality warnings, "Show anyway", hatched out-of-distribution pixels
        self.pacs = PacsController(self)  # outbox in the status bar, retried in the background; the operator
        self.map_area.theatre.exit_button.clicked.connect(lambda: self.actions["theatre"].setChecked(False))
        self.map_area.empty.open_button.clicked.connect(lambda: open_capture_dialog(self))

        self.image_view.hovered.connect(self.spectrum.show_pixel)
        self.image_view.left.connect(self.spectrum.clear_hover)
        self.image_view.clicked.connect(self.pin_spectrum)
        self.image_view.roi_changed.connect(self.spectrum.show_roi)
        self.overlay_state.on_change("pins", self.spectrum.show_pins)
        self.spectrum.clear_button.clicked.connect(self.overlay_state.clear_pins)

        self.setAcceptDrops(True)
        self._update_actions()
        fit_docks_to_screen(self, self.docks["Capture"], self.docks["Spectrum"])
        fit_to_screen(self, 1400, 860)
        restore_layout(self, self.settings)
        self.actions["theatre"].setChecked(bool(self.settings.get("theatre_mode")))
        QTimer.singleShot(0, self.load_model)  # after the window is up: torch loads on a worker
        self.model_watch = ModelStoreWatcher(self)  # a change by the CLI reaches this window within seconds
        self.model_watch.changed.connect(self._installed_model_changed)

    # -- extension points --------------------------------------------------
    def add_dock(self, title: str, widget: QWidget, area=Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Add ``widget`` as a dock (object name ``dock_<title>``); its toggle goes in the View menu."""
        dock = QDockWidget(title, self)
        dock.setObjectName("dock_" + title.lower().replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.menus["&View"].addAction(dock.toggleViewAction())
        self.docks[title] = dock
        return dock

    def add_menu(self, title: str) -> QMenu:
        """A new top-level menu before Tools, for a mode's own actions."""
        menu = QMenu(title, self)
        menu.setObjectName("menu_" + title.replace("&", "").lower().replace(" ", "_"))
        self.menuBar().insertMenu(self.menus["&Tools"].menuAction(), menu)
        self.menus[title] = menu
        return menu

    # -- controls ----------------------------------------------------------
    def set_roi_visible(self, on: bool) -> None:
        self.image_view.set_roi_visible(on)
        if self.actions["roi"].isChecked() != bool(on):
            self.actions["roi"].setChecked(bool(on))

    def set_theatre_mode(self, on: bool) -> None:
        """Full screen with only the map, a large legend and the model; remembered in the settings."""
        from app.application import apply_theatre_mode

        self.settings.set("theatre_mode", bool(on))
        app = QApplication.instance()
        if app is not None:
            apply_theatre_mode(app, bool(on))
        size = 40 if on else 24
        self.toolbar.setIconSize(QSize(size, size))
        self.theatre.set_active(on)
        QTimer.singleShot(0, self.image_view.zoom_to_fit)  # once the new layout is in place

    def show_warning(self, kind: str, text: str, capture: str | None = None) -> None:
        """A warning that stays on screen (banner) until acknowledged or another capture is shown; also kept
        in the notice history. Kinds about a capture name ``capture`` (default: the one on screen)."""
        from app.warning_banner import CAPTURE_BOUND

        if capture is None and kind in CAPTURE_BOUND and self.opened is not None:
            capture = self.opened.capture.capture_id
        self.warnings.show_warning(kind, text, capture=capture)
        self.sink.note(f"{capture}: {text}" if capture else text, level="warning")

    def pin_spectrum(self, row: int, col: int) -> None:
        """Pin the spectrum of pixel ``(row, col)``: a curve and a marker in the next colour."""
        if self.opened is not None:
            self.overlay_state.add_pin(row, col)

    # -- open --------------------------------------------------------------
    def last_folder(self) -> str:
        return last_folder(self.settings)

    def open_capture(self, raw_path, dark_path=None, white_path=None) -> None:
        """Open a capture in a worker; the current one stays until the new one is ready."""
        if not all(ask() for ask in self.before_open):
            return
        self._start("open", workers.open_capture_job, raw_path, dark_path, white_path)

    def show_live(self, opened: workers.OpenedCapture, result, started: float | None = None) -> None:
        """Live mode (:mod:`app.live`): a capture and its map at once; no note or recent file per capture,
        and the zoom kept while the frame size stays."""
        started = time.perf_counter() if started is None else started
        self._opened(opened, quiet=True)
        self._classified(workers.Classified(result), opened, started, quiet=True)

    def _opened(self, opened: workers.OpenedCapture, *, quiet: bool = False) -> None:
        self.opened, self.result = opened, None
        self.warnings.capture_changed(opened.capture.capture_id)  # no banner over a capture it is not about
        self.spectrum.clear_hover()
        self.map_area.show_map()
        self.map_area.colour_bar.set_has_map(False)
        self.map_area.theatre.set_model_line(f"{opened.capture.capture_id} — not classified yet (F5)")
        self.image_view.set_rgb(opened.rgb, fit=not quiet)
        self.spectrum.set_cube(opened.cube)
        self.metadata.show_capture(opened)
        self.legend.set_labels(None)
        self.status.show_no_map()
        self.actions["roi"].setChecked(False)
        self.setWindowTitle(f"NeuroHSI — {opened.capture.capture_id}")
        if not quiet:
            started = self._job_context[1]
            self.image_view.after_next_paint(
                lambda: self.status.show_waited(time.perf_counter() - started, opened.timings_s, verb="Opened"))
            if opened.capture.raw_path is not None:
                self.settings.add_recent_file(opened.capture.raw_path)
                self.recent_menu.rebuild()
            self.sink.note(f"Opened {opened.capture.capture_id}")
        quality = opened.quality  # core.capture.quality.QualityReport; shown at once, before any map (self.trust: the map)
        if quality is not None and quality.status != "ok":
            self.show_warning("quality", quality.reason)
        self._update_actions()
        self.capture_opened.emit(opened)

    # -- classify ----------------------------------------------------------
    def model_path(self) -> Path | None:
        """The model :func:`core.model.choice.resolve_model_path` chooses (``--model``, installed, demo), or None."""
        from core.errors import ModelFileError
        from core.model.choice import resolve_model_path

        try:
            return resolve_model_path(self.model_override)
        except ModelFileError:
            return None

    def _installed_model_changed(self) -> None:
        """The store changed (CLI, retraining dialog, another window): load and name the new model."""
        if self.model_override is None:  # --model pins this window's model
            self.load_model()
            self.model_changed.emit()

    def remote_target(self) -> workers.RemoteTarget | None:
        if not self.settings.remote_enabled():
            return None
        deployment = self.settings.get("deployment").strip() or None
        if self.settings.get("endpoint_auth") == "entra":  # one token holder per window: refreshed, not refetched
            if getattr(self, "_entra_auth", None) is None:
                from app.retraining.cloud_page import load_cloud_settings
                from remote.cloud_config import resolve, scoring_credential
                from remote.endpoint_auth import EntraTokenAuth

                self._entra_auth = EntraTokenAuth(scoring_credential(resolve(load_cloud_settings(self.settings))))
            return workers.RemoteTarget(self.settings.get("endpoint_url").strip(), None, deployment,
                                        token_auth=self._entra_auth)
        return workers.RemoteTarget(self.settings.get("endpoint_url").strip(), self.settings.endpoint_key(), deployment)

    def remote_policy(self) -> workers.RemotePolicy:
        """The endpoint policy with the user's deadline setting (single captures and live mode)."""
        return workers.RemotePolicy(deadline_s=max(1, int(self.settings.get("remote_deadline_s"))))

    def classify(self) -> None:
        """Classify the open capture: remotely when an endpoint is configured, else locally."""
        from functools import partial

        from core.model.ensemble import resolve_model_ensemble

        if self.opened is None:
            self.sink.note("Open a capture before classifying", level="warning")
            return
        try:
            remote = self.remote_target()
        except ValueError as exc:  # the keyring could not be read: say so, classify locally
            self.sink.report(exc, level="warning")
            remote = None
        self._start(
            "classify",
            workers.classify_job,
            self.opened,
            model_resolver=partial(resolve_model_ensemble, self.model_override,
                                   ensemble=bool(self.settings.get("use_ensemble"))),
            remote=remote, fallback_local=bool(self.settings.get("fallback_local")),
            policy=self.remote_policy(),
        )

    def _classified(self, classified: workers.Classified, opened, started: float, *, quiet: bool = False) -> None:
        if opened is not self.opened:
            return  # a new capture was opened meanwhile; this map belongs to the old one
        from core.model.uncertainty import with_uncertainty

        # the surgeon's threshold (Settings), or no flag; from the probabilities, so remote maps get it too
        result = with_uncertainty(classified.result, self.settings.uncertainty_threshold())
        valid = result.cube.valid if result.cube is not None else opened.cube.valid
        self.image_view.set_result(result.labels, result.probabilities, result.model.class_ids, valid)
        self.result = result
        self.legend.set_result(result)  # class shares and flag layers, as every export lists them
        self.spectrum.set_result(result.labels, result.probabilities, result.model.class_ids)
        self.status.show_model(result.model, result.source, classified_at=result.classified_at)
        if "model" in self.warnings.warnings:  # a new map: "made by another model" no longer holds
            self.warnings.acknowledge(("model",))
        self.map_area.colour_bar.set_has_map(True)
        say = classified.fallback is None and not quiet
        self.image_view.after_next_paint(lambda: self._map_painted(result, started, opened.capture.capture_id, say))
        self._update_actions()
        self.classified.emit(result)

    def _map_painted(self, result, started: float, capture_id: str, say: bool) -> None:
        """The map is on screen: show the wall time since the click (what the user waited)."""
        waited = time.perf_counter() - started
        if self.trust.withheld(result, capture_id, say=say):  # no map on screen: never "Map in N ms"
            self.map_shown.emit(waited)
            return
        self.status.show_waited(waited, result.timings_s)
        self.map_area.theatre.set_model_line(self.status.theatre_line(result, waited))
        if say:
            self.sink.note(f"Classified {capture_id} with {result.model.name} v{result.model.version}"
                           f" in {1000 * waited:.0f} ms")
        self.map_shown.emit(waited)

    # -- jobs --------------------------------------------------------------
    def is_busy(self) -> bool:
        return self.jobs.busy

    def _start(self, kind: str, job, *args, **kwargs) -> None:
        self._job_context = (self.opened, time.perf_counter())  # the click: every time shown starts here
        self.jobs.start(kind, job, *args, **kwargs)

    def _job_yielded(self, _kind: str, value) -> None:
        if isinstance(value, workers.Progress):
            self.status.set_busy(value.text, value.fraction)
            self.map_area.theatre.set_busy(value.text)
        elif isinstance(value, workers.FallbackNotice):
            self.show_warning("remote", f"Endpoint {value.endpoint} failed ({value.problem}); "
                                        "this map was classified locally instead")

    def _job_returned(self, kind: str, value) -> None:
        if kind == "open":
            self._opened(value)
        else:
            self._classified(value, *self._job_context)

    def _job_failed(self, kind: str, exc: BaseException) -> None:
        self.sink.report(exc, context=model_hint(exc) if kind == "classify" else None)
        self.job_failed.emit(exc)

    def _job_busy(self, busy: bool, _kind: str | None) -> None:
        self.status.set_busy("Working" if busy else None, 0.0)
        self.map_area.theatre.set_busy("Working" if busy else None)
        self._update_actions()
        self.busy_changed.emit(busy)

    def cancel_job(self, quiet: bool = False) -> None:
        """Ask the running job to stop at its next step; its result, if any, is dropped."""
        kind = self.jobs.cancel()
        if kind is not None and not quiet:
            self.sink.note(f"Cancelled {'classification' if kind == 'classify' else 'opening'}")

    def load_model(self) -> None:
        """(Re)load the model in the background: torch and the weights are ready before the first click.

        The one model rule (:func:`core.model.choice.resolve_model`) runs in the worker, so a
        missing or broken model is reported with its file name and how to fix it.
        """
        from functools import partial

        from core.model.choice import resolve_model

        override = self.model_override
        self.model_loader.start(partial(resolve_model, override), source=override)

    def _model_state(self, state: str, text: str) -> None:
        self.model_indicator.show_state(state, text)
        self.map_area.empty.set_model_text(text, problem=state in ("missing", "failed"))
        if state in ("missing", "failed"):
            self.sink.note(text, level="warning")
        if state == "ready":
            self._warn_if_map_from_another_model()

    def _warn_if_map_from_another_model(self) -> None:
        """After an install or revert (here, in the dialog or by the CLI): the map on screen keeps naming
        the model that made it, and a banner says the model is now another, until the next map."""
        model = self.model_loader.model
        if self.result is None or model is None or self.result.source != "local":
            return
        made_by = self.result.model
        if made_by.sha256 == model.info.sha256:
            return
        self.show_warning(
            "model", f"The map on screen was made by {made_by.name} v{made_by.version}; the model is now "
                     f"{model.info.name} v{model.info.version}. Classify again to map with it.")

    def _update_actions(self) -> None:
        has_capture, busy = self.opened is not None, self.jobs.busy
        self.actions["classify"].setEnabled(has_capture)
        self.actions["cancel"].setEnabled(busy)
        for name in ("export_overlay", "export_labels", "export_npz", "export_dicom"):
            self.actions[name].setEnabled(self.result is not None)

    # -- settings ----------------------------------------------------------
    def open_settings(self):
        """Show the settings dialog (non-blocking); returns it."""
        from app.settings_dialog import SettingsDialog, SettingsState

        dialog = SettingsDialog(SettingsState.from_settings(self.settings), self, app_settings=self.settings)
        dialog.accepted.connect(lambda: self.apply_settings_state(dialog.state))
        dialog.open()
        return dialog

    def apply_settings_state(self, state) -> None:
        """Store a :class:`app.settings_dialog.SettingsState` and apply its display options."""
        try:
            state.save(self.settings)
        except ValueError as exc:
            self.sink.report(exc, context="settings")
        self._entra_auth = None  # the endpoint or the sign-in may have changed
        self.overlay_state.palette = state.palette
        if not self.settings.remote_enabled():
            self.warnings.acknowledge(("remote",))  # about an endpoint no longer in use
        self.actions["theatre"].setChecked(state.theatre_mode)
        self.load_model()  # the model may have changed; the cache makes an unchanged one instant

    # -- drag and drop -----------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if capture_from_mime(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        capture = capture_from_mime(event.mimeData())
        if capture is not None:
            event.acceptProposedAction()
            self.open_capture(*capture)

    # -- window state ------------------------------------------------------
    def save_window(self) -> None:
        save_layout(self, self.settings, self.theatre)

    def closeEvent(self, event) -> None:
        self.cancel_job(quiet=True)
        self.model_loader.shutdown()
        self.save_window()
        super().closeEvent(event)
