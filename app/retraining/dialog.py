"""Retraining dialog: choose labelled captures, check, train (local or Azure ML), compare, install, revert.

Views over one :class:`app.retraining.state.RetrainingState` — the dataset table
(:mod:`.dataset_table`), the training form (:mod:`.training_form`), the job panel
(:mod:`.job_panel`) and the comparison (:mod:`.comparison_view`) — plus the
pre-flight checks and Start/Cancel. Everything slow (scanning the dataset, checks,
decoding, upload and job polling, fetching and comparing the model, installing,
reverting) is a generator job run by :func:`app.job_runner.run_job`, the main
window's job runner; the GUI thread never reads a dataset file or waits on the
network. A QTimer refreshes the clock and phase progress from the run's snapshot.
Cancel and "Use this model" ask first (a model worse on tumour needs a typed reason);
installs and reverts go through :class:`core.model.installed.ModelStore`, the store
every classify reads, so a revert from any dialog, or after a restart, is the one in use.
"""
from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.retraining.comparison_view import ComparisonView
from app.retraining.dataset_table import DatasetTable
from app.retraining.job_panel import JobPanel
from app.retraining.installing import (
    OVERRIDE_NOTE, check_reason, history_job, install_job, install_question, revert_job,
)
from app.retraining.registry_view import RegistryView
from app.retraining.run_snapshot import RunSnapshot
from app.retraining.runner import Environment, TrainingRun, checks_job, default_environment
from app.retraining.state import CaptureRow, Check, RetrainingState, scan_dataset
from app.retraining.training_form import TrainingForm, recall_form, remember_form
from app.job_runner import run_job
from core.errors import one_line
from core.model.installed import HistoryEntry, ModelStore, model_name


def scan_job(root: Path) -> Generator[str, None, list[CaptureRow]]:
    """Generator job: the capture rows of dataset folder ``root`` (reads every label PNG)."""
    yield f"reading {root}"
    return scan_dataset(root)


class RetrainingDialog(QtWidgets.QDialog):
    """``env`` gives storage and backends (default: keyring/env storage, local jobs in NEUROHSI_HOME).

    ``settings`` (an :class:`app.settings.AppSettings`) remembers the dataset and the form;
    ``current_model`` is the model to compare against (default: the installed one);
    ``models_dir`` the store "Use this model" installs into (default ``NEUROHSI_HOME/models``).
    ``modelInstalled`` carries the model now in use after an install or a revert.
    """

    modelInstalled = QtCore.Signal(Path)

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        *,
        env: Environment | None = None,
        settings=None,
        current_model: str | Path | None = None,
        models_dir: str | Path | None = None,
        dataset: str | Path | None = None,
        poll_ms: int = 250,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Retrain the classifier")
        self.state = RetrainingState()
        if env is None:  # Settings ▸ Cloud values, read when each check or run starts (env NEUROHSI_* wins)
            from app.retraining.cloud_page import load_cloud_settings

            env = default_environment(lambda: load_cloud_settings(settings))
        self.env = env
        self.settings = settings
        self.current_model = None if current_model is None else Path(current_model)
        self.store = ModelStore(models_dir)
        self.models_dir = self.store.models_dir
        if self.current_model is None:
            self.current_model = self._current_model_path()
        self.run: TrainingRun | None = None
        self.installed: Path | None = None
        self.current_metrics: dict[str, float] = {}
        self.in_use: HistoryEntry | None = None  # the store's newest entry (None: nothing ever installed)
        self.revert_to: HistoryEntry | None = None  # what Revert goes back to (path "" = demo); None: nothing
        self._workers: dict[str, object] = {}  # running jobs by kind: "scan", "checks", "run", "install"
        self._checks_generation = 0  # a newer checks job makes an older one's answer stale
        self._closed = False  # jobs that end after close() must not touch the widgets
        self._build()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        remembered = self._recall()
        if dataset is None and remembered.get("dataset") and Path(remembered["dataset"]).is_dir():
            dataset = remembered["dataset"]  # the dataset of the last opening
        if dataset is not None and str(dataset).strip():
            self.set_dataset(dataset)
        self.refresh_history()
        self._sync()

    # ---- layout
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        # captures beside the form and checks, job beside the comparison: two rows, so the whole
        # dialog ("Use this model", "Revert", the chart) fits 1280 x 800 and 1366 x 768 screens
        top = QtWidgets.QHBoxLayout()
        self.captures = DatasetTable(self.state, self)
        self.captures.folderChosen.connect(self.set_dataset)
        self.captures.rolesChanged.connect(self._sync)
        top.addWidget(self.captures, 3)
        side = QtWidgets.QVBoxLayout()
        self.form = TrainingForm(self.state, self)
        self.form.changed.connect(self._sync)
        self.form.backendChanged.connect(lambda _name: self.run_checks())
        side.addWidget(self.form)
        side.addWidget(self._build_checks(), 1)
        top.addLayout(side, 2)
        layout.addLayout(top, 3)

        bottom = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal, self)
        self.job = JobPanel(bottom)
        self.comparison = ComparisonView(bottom)
        self.comparison.use_button.clicked.connect(self.use_model)
        self.comparison.revert_button.clicked.connect(self.revert)
        bottom.addWidget(self.job)
        bottom.addWidget(self.comparison)
        bottom.setStretchFactor(0, 2)  # a long verdict must not squeeze the chart
        bottom.setStretchFactor(1, 3)
        layout.addWidget(bottom, 4)
        # registry versions of the chosen backend (local: models its jobs uploaded), a tab beside the comparison
        self.registry = RegistryView(lambda: self.env.backend(self.state.backend, self.env.storage()), self)
        self.comparison.tabs.addTab(self.registry, "Registered models")
        from app.window_layout import fit_to_screen

        fit_to_screen(self, 1280, 960)  # 1280 x 800 and 1366 x 768 screens get all of it

    def _build_checks(self) -> QtWidgets.QGroupBox:
        checks = QtWidgets.QGroupBox("Pre-flight checks", self)
        checks_layout = QtWidgets.QVBoxLayout(checks)
        self.checks_label = QtWidgets.QLabel(self)
        self.checks_label.setObjectName("checks")
        self.checks_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        checks_layout.addWidget(self.checks_label)
        self.recheck_button = QtWidgets.QPushButton("Check again", self)
        self.recheck_button.clicked.connect(self.run_checks)
        self.cloud_button = QtWidgets.QPushButton("Cloud settings…", self)
        self.cloud_button.setObjectName("cloud_button")
        self.cloud_button.clicked.connect(self.open_cloud_settings)
        self.cloud_button.setEnabled(self.settings is not None)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.recheck_button, 1)
        row.addWidget(self.cloud_button)
        checks_layout.addLayout(row)
        self.reason_label = QtWidgets.QLabel(self)
        self.reason_label.setObjectName("start_reason")
        self.reason_label.setWordWrap(True)
        self.reason_label.setStyleSheet("color: #e06060")
        checks_layout.addWidget(self.reason_label)
        buttons = QtWidgets.QHBoxLayout()
        self.start_button = QtWidgets.QPushButton("Start", self)
        self.start_button.setObjectName("start_button")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QtWidgets.QPushButton("Cancel job", self)
        self.cancel_button.setObjectName("cancel_button")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        checks_layout.addLayout(buttons)
        checks_layout.addStretch(1)
        return checks

    @property
    def last(self) -> RunSnapshot | None:
        """The latest snapshot of the current (or last) run."""
        return self.job.last

    def _start(self, kind: str, job, *args, on_return, on_yield=None) -> None:
        """Run generator ``job(*args)`` with the app's job runner; one job of each ``kind`` is tracked."""
        def alive(fn):
            return lambda *a: None if self._closed else fn(*a)

        def finished() -> None:
            if self._workers.get(kind) is worker:
                del self._workers[kind]
            self._sync()

        worker = run_job(job, *args, on_yield=alive(on_yield or (lambda _item: None)), on_return=alive(on_return),
                         on_error=alive(lambda exc: self._job_failed(kind, exc)), on_finish=alive(finished),
                         owner=self, context=f"Retraining ({kind})")
        self._workers[kind] = worker

    def _job_failed(self, kind: str, exc: BaseException) -> None:
        if kind == "checks":  # a check that crashed must still block Start, with its reason
            self.state.checks = [Check("checks", False, one_line(exc))]
        else:
            self.reason_label.setText(f"{kind} failed: {one_line(exc)}")
        self._sync()

    # ---- dataset
    def set_dataset(self, folder: str | Path) -> None:
        """Scan ``folder`` on a worker; the table fills and the checks start when it is read."""
        folder = Path(folder)
        self._start("scan", scan_job, folder, on_return=lambda rows: self._dataset_read(folder, rows))
        self._sync()

    def _dataset_read(self, folder: Path, rows: list[CaptureRow]) -> None:
        self.state.set_dataset(folder, rows)
        self.captures.refresh()
        self.run_checks()

    def set_role(self, capture_id: str, role: str) -> None:
        self.captures.set_role(capture_id, role)

    @property
    def loading(self) -> bool:
        return "scan" in self._workers

    # ---- checks
    def run_checks(self) -> None:
        """Start the pre-flight checks on a worker; Start stays disabled until they pass."""
        self.state.checks = []
        self._checks_generation += 1
        generation = self._checks_generation
        self._start("checks", checks_job, self.env, self.state.backend, self.current_model,
                    on_return=lambda result: self._checks_done(generation, result))
        self._sync()

    def _checks_done(self, generation: int, result: tuple[list[Check], dict[str, float]]) -> None:
        if generation == self._checks_generation:
            self.state.checks, self.current_metrics = result
            self._sync()

    @property
    def checks_running(self) -> bool:
        return "checks" in self._workers

    # ---- run
    def start(self) -> None:
        if self.state.start_blocker is not None:
            return
        dataset = self.state.dataset.name if self.state.dataset is not None else ""
        try:
            run = TrainingRun(self.env, self.state, current_model=self._current_model_path(),
                              model_name=model_name(self.state.model_name, dataset), history=self.store)
        except ValueError as exc:
            self.reason_label.setText(one_line(exc))
            return
        self.run = run
        self.installed = None
        self.job.clear()
        self.comparison.clear("Comparing needs the finished model…")
        self.state.running = True
        self.job.show_snapshot(run.snapshot())
        self._start("run", run.job, on_yield=self._show, on_return=self._finished)
        self._sync()

    def cancel(self) -> None:
        """Ask, then ask the job to stop (it ends as Canceled once the backend confirms)."""
        if self.run is None or not self.state.running:
            return
        if self.ask("Cancel training?", "Stop this training job? The work done so far is lost; "
                    "the installed model stays as it is."):
            self.run.cancel()

    def ask(self, title: str, text: str) -> bool:
        """A Yes/No question (No is the default); True for Yes."""
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Question, title, text,
                                    QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
                                    self)
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.No)
        return box.exec() == QtWidgets.QMessageBox.StandardButton.Yes

    def _tick(self) -> None:
        if self.run is not None and self.state.running:
            self._show(self.run.snapshot())

    def _show(self, snap: RunSnapshot) -> None:
        if self.state.running:
            self.job.show_snapshot(snap)

    def _finished(self, snap: RunSnapshot) -> None:
        self.job.show_snapshot(snap)
        self.state.running = False
        if snap.error:
            self.reason_label.setText(f"job failed: {snap.error}")
        if snap.comparison is not None:
            self.comparison.show_comparison(snap.comparison)
        elif snap.model_path is not None:
            self.comparison.clear(snap.comparison_note or "No comparison.")
        else:
            self.comparison.clear("No new model.")
        if snap.status == "Completed":
            self.registry.refresh()  # the new version is in the registry now
        self._sync()

    def use_model(self) -> None:
        """Check compatibility, ask (a typed reason for a model worse on tumour), then install it on a worker."""
        from core.training.comparison import install_problems

        snap = self.last
        if snap is None or snap.model_path is None or "install" in self._workers:
            return
        info = snap.new_info
        problems = install_problems(info, snap.installed_info, captures_profile=snap.captures_profile)
        verdict = snap.comparison.verdict if snap.comparison is not None else (snap.comparison_note or "Not compared.")
        text = install_question(info, verdict, problems)
        override = ""
        if snap.comparison is not None and snap.comparison.tumour_worse:
            reason = self.ask_reason("Install a model worse on tumour?", f"{text}\n\n{OVERRIDE_NOTE}")
            if reason is None:
                return
            try:
                override = check_reason(reason)
            except ValueError as exc:
                self.reason_label.setText(f"not installed: {exc}")
                return
        elif not self.ask("Use this model?", text):
            return
        self._start("install", install_job, snap.model_path, self.store, f"{info.name}-v{info.version}",
                    verdict, override, on_return=self._installed)
        self._sync()

    def ask_reason(self, title: str, text: str) -> str | None:
        """The typed reason for an override; None when the user cancels."""
        from app.retraining.override_dialog import ask_override_reason

        return ask_override_reason(self, title, text)

    def _installed(self, entry: HistoryEntry) -> None:
        path = Path(entry.path)
        self.installed = path
        self.current_model = path
        self.reason_label.setText(f"installed {entry.shown}; it is now the model used for classification")
        self.modelInstalled.emit(path)
        self.refresh_history()

    def revert(self) -> None:
        """Go back to the model before the current one (one click; recorded in the history)."""
        if self.revert_to is None or "revert" in self._workers:
            return
        self._start("revert", revert_job, self.store, on_return=self._reverted)
        self._sync()

    def _reverted(self, entry: HistoryEntry) -> None:
        self.current_model = self._current_model_path()
        self.reason_label.setText(f"reverted: {entry.shown} is the model used for classification again")
        if self.current_model is not None:
            self.modelInstalled.emit(self.current_model)
        self.refresh_history()

    def refresh_history(self) -> None:
        """Read the store on a worker: what is in use and what Revert would go back to (also after a CLI change)."""
        self._start("history", history_job, self.store, on_return=self._history_read)

    def _history_read(self, result: tuple[HistoryEntry | None, HistoryEntry | None]) -> None:
        self.in_use, self.revert_to = result
        if self.in_use is None:
            text = "In use: the bundled demo model (nothing installed yet)"
        else:
            text = f"In use: {self.in_use.shown}"
            if self.in_use.user and self.in_use.when:
                when = self.in_use.when[:16].replace("T", " ")
                text += f" ({self.in_use.action}ed by {self.in_use.user}, {when} UTC)"
        self.comparison.history_label.setText(text)
        self._sync()

    def open_cloud_settings(self):
        """Settings ▸ Cloud; the checks run again when it closes."""
        from app.retraining.cloud_page import open_cloud_settings

        dialog = open_cloud_settings(self.settings, self)
        dialog.finished.connect(lambda _result: self.run_checks())
        return dialog

    def _current_model_path(self) -> Path | None:
        """The model Classify uses now (core.model.choice: the store's installed model, else the demo model)."""
        from core.errors import ModelFileError
        from core.model.choice import resolve_model_path

        try:
            return resolve_model_path(None, models_dir=self.models_dir)
        except ModelFileError:
            return self.current_model

    # ---- remembered between openings (and restarts)
    def _recall(self) -> dict:
        return recall_form(self.settings, self.form)

    def _remember(self) -> None:
        remember_form(self.settings, self.form, self.state.dataset)

    # ---- enabling
    def _sync(self) -> None:
        blocker = self.state.start_blocker
        if self.loading:
            blocker = "reading the dataset…"
        elif blocker == "pre-flight checks have not run yet" and self.checks_running:
            blocker = "checking storage, credentials and backend…"
        self.start_button.setEnabled(blocker is None)
        self.start_button.setToolTip(blocker or "Upload the dataset and start training")
        if not (self.last and self.last.error):
            self.reason_label.setText(blocker or "")
        # red only for what the user must fix; a running job is no problem
        self.reason_label.setStyleSheet("" if self.state.running and not (self.last and self.last.error)
                                        else "color: #e06060")
        self.cancel_button.setEnabled(self.state.running)
        lines = [f"{'✓' if c.ok else '✗'} {c.name}" + ("" if c.ok else f": {c.message}") for c in self.state.checks]
        labels = self.state.labels_check()
        lines.insert(0, f"{'✓' if labels.ok else '✗'} labels" + ("" if labels.ok else f": {labels.message}"))
        self.checks_label.setText("\n".join(lines))
        finished_ok = self.last is not None and self.last.model_path is not None and not self.state.running
        self.comparison.use_button.setEnabled(finished_ok and self.installed is None and "install" not in self._workers)
        self.comparison.revert_button.setEnabled(self.revert_to is not None and not self._workers.keys() & {
            "install", "revert"})
        if self.revert_to is not None:
            self.comparison.revert_button.setToolTip(f"Use {self.revert_to.shown} again")
        else:
            self.comparison.revert_button.setToolTip("No earlier model to go back to")
        editable = not self.state.running
        self.captures.set_editable(editable)
        self.form.set_editable(editable)
        self.recheck_button.setEnabled(editable)

    def showEvent(self, event) -> None:
        if self._closed:  # re-opened: watch jobs again
            self._closed = False
            self.timer.start()
            remembered = self._recall() if self.state.dataset is None else {}
            if remembered.get("dataset") and Path(remembered["dataset"]).is_dir():
                self.set_dataset(remembered["dataset"])
        if "history" not in self._workers:
            self.refresh_history()  # every showing: the CLI or another window may have changed the model
        self._sync()
        super().showEvent(event)

    def closeEvent(self, event) -> None:
        # a running job keeps running (the backend owns it); the dialog just stops watching
        self._remember()
        self._closed = True
        self.timer.stop()
        for worker in list(self._workers.values()):
            worker.quit()
        # a job stopped here never reports back: forget it, or a re-opened dialog waits on it for ever
        self._workers.clear()
        self.registry.stop()
        super().closeEvent(event)
