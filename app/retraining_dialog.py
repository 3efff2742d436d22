"""Retraining dialog: choose labelled captures, check, train (local or Azure ML), compare, install.

Thin widgets over :class:`app.retraining.state.RetrainingState`; slow work
(pre-flight checks, upload, job polling, model fetch) runs on worker threads in
:mod:`app.retraining.runner` and a QTimer reads their snapshots — the GUI
thread never waits on the network or the job.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.retraining.runner import Environment, RunSnapshot, TrainingRun, default_environment, run_checks
from app.retraining.state import BACKENDS, Check, RetrainingState, default_models_dir, install_model
from core.classes import CLASS_IDS, class_table

BACKEND_TITLES = {"local": "Local (this computer)", "azureml": "Azure ML"}
ROLES = ("train", "test", "skip")
ROLE_TITLES = {"train": "Train", "test": "Held-out test", "skip": "Skip"}


def flat_metrics(metrics: dict | None) -> dict[str, float]:
    """Scalar metrics, nested dicts flattened as ``key.sub`` (lists and matrices left out)."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[str(key)] = float(value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{key}.{sub}"] = float(v)
    return out


class RetrainingDialog(QtWidgets.QDialog):
    """``env`` gives storage and backends (default: keyring/env storage, local jobs in NEUROHSI_HOME).

    ``settings`` (an :class:`app.settings.AppSettings`) receives the new default model;
    ``current_model`` is the model to compare against; ``models_dir`` where "Use this
    model" installs (default ``NEUROHSI_HOME/models``).
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
        self.env = env or default_environment()
        self.settings = settings
        self.current_model = None if current_model is None else Path(current_model)
        self.models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        self.run: TrainingRun | None = None
        self.last: RunSnapshot | None = None
        self.installed: Path | None = None
        self.previous_model: str | None = None
        self.current_metrics: dict[str, float] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retraining-checks")
        self._checks_future: Future | None = None
        self._build()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        if dataset is not None:
            self.set_dataset(dataset)
        self._sync()

    # ---- layout
    def _build(self) -> None:
        layout = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.dataset_edit = QtWidgets.QLineEdit(self)
        self.dataset_edit.setReadOnly(True)
        self.dataset_edit.setPlaceholderText("dataset folder: <capture_id>/{raw,dark,white}.tif, labels.png")
        browse = QtWidgets.QPushButton("Choose dataset…", self)
        browse.clicked.connect(self._choose_dataset)
        row.addWidget(self.dataset_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)

        names = class_table()
        self.table = QtWidgets.QTableWidget(0, 3 + len(CLASS_IDS) + 1, self)
        self.table.setHorizontalHeaderLabels(
            ["Capture", "Patient", "Use as"] + [names.by_id(c).name for c in CLASS_IDS] + ["Note"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 2)
        self.warnings_label = QtWidgets.QLabel(self)
        self.warnings_label.setObjectName("class_warnings")
        self.warnings_label.setStyleSheet("color: #e0a020")
        self.warnings_label.setWordWrap(True)
        layout.addWidget(self.warnings_label)

        middle = QtWidgets.QHBoxLayout()
        params = QtWidgets.QGroupBox("Training", self)
        form = QtWidgets.QFormLayout(params)
        p = self.state.params
        self.epochs_spin = self._spin(1, 10_000, p.epochs)
        self.batch_spin = self._spin(1, 4096, p.batch_size)
        self.patch_spin = self._spin(3, 31, p.patch_size, step=2)
        self.folds_spin = self._spin(2, 20, p.folds)
        self.seed_spin = self._spin(0, 2**31 - 1, p.seed)
        self.lr_spin = QtWidgets.QDoubleSpinBox(self)
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 0.5)
        self.lr_spin.setSingleStep(1e-4)
        self.lr_spin.setValue(p.lr)
        self.cv_check = QtWidgets.QCheckBox("Double cross-validation", self)
        self.cv_check.setChecked(p.double_cv)
        self.backend_combo = QtWidgets.QComboBox(self)
        for name in BACKENDS:
            self.backend_combo.addItem(BACKEND_TITLES[name], name)
        self.name_edit = QtWidgets.QLineEdit(self.state.model_name, self)
        for label, widget in (("Epochs", self.epochs_spin), ("Batch size", self.batch_spin),
                              ("Patch size", self.patch_spin), ("Folds", self.folds_spin),
                              ("Learning rate", self.lr_spin), ("", self.cv_check), ("Seed", self.seed_spin),
                              ("Backend", self.backend_combo), ("Model name", self.name_edit)):
            form.addRow(label, widget)
        for spin in (self.epochs_spin, self.batch_spin, self.patch_spin, self.folds_spin, self.seed_spin):
            spin.valueChanged.connect(self._params_changed)
        self.lr_spin.valueChanged.connect(self._params_changed)
        self.cv_check.toggled.connect(self._params_changed)
        self.name_edit.textChanged.connect(self._params_changed)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        middle.addWidget(params)

        checks = QtWidgets.QGroupBox("Pre-flight checks", self)
        checks_layout = QtWidgets.QVBoxLayout(checks)
        self.checks_label = QtWidgets.QLabel(self)
        self.checks_label.setObjectName("checks")
        self.checks_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        checks_layout.addWidget(self.checks_label)
        self.recheck_button = QtWidgets.QPushButton("Check again", self)
        self.recheck_button.clicked.connect(self.run_checks)
        checks_layout.addWidget(self.recheck_button)
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
        middle.addWidget(checks, 1)
        layout.addLayout(middle)

        progress = QtWidgets.QGroupBox("Job", self)
        grid = QtWidgets.QGridLayout(progress)
        self.upload_bar = QtWidgets.QProgressBar(self)
        self.upload_bar.setFormat("upload %p%")
        self.timeline_label = QtWidgets.QLabel(self)
        self.timeline_label.setObjectName("timeline")
        self.time_label = QtWidgets.QLabel(self)
        self.log_view = QtWidgets.QPlainTextEdit(self)
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.chart = pg.GraphicsLayoutWidget(self)
        self.loss_plot = self.chart.addPlot(title="loss")
        self.chart.nextRow()
        self.oacc_plot = self.chart.addPlot(title="validation OACC")
        self.oacc_plot.setXLink(self.loss_plot)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((240, 160, 60), width=2), symbol="o", symbolSize=4)
        self.oacc_curve = self.oacc_plot.plot(pen=pg.mkPen((90, 180, 250), width=2), symbol="o", symbolSize=4)
        self.chart.setMinimumHeight(200)
        grid.addWidget(self.upload_bar, 0, 0)
        grid.addWidget(self.time_label, 0, 1)
        grid.addWidget(self.timeline_label, 1, 0, 1, 2)
        grid.addWidget(self.log_view, 2, 0)
        grid.addWidget(self.chart, 2, 1)
        layout.addWidget(progress, 3)

        result = QtWidgets.QHBoxLayout()
        self.metrics_table = QtWidgets.QTableWidget(0, 3, self)
        self.metrics_table.setHorizontalHeaderLabels(["Metric", "Current model", "New model"])
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.setMaximumHeight(160)
        self.use_button = QtWidgets.QPushButton("Use this model", self)
        self.use_button.setObjectName("use_button")
        self.use_button.clicked.connect(self.use_model)
        result.addWidget(self.metrics_table, 1)
        result.addWidget(self.use_button)
        layout.addLayout(result)
        self.resize(1100, 900)

    def _spin(self, low: int, high: int, value: int, *, step: int = 1) -> QtWidgets.QSpinBox:
        spin = QtWidgets.QSpinBox(self)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    # ---- dataset table
    def _choose_dataset(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder", self.dataset_edit.text())
        if folder:
            self.set_dataset(folder)

    def set_dataset(self, folder: str | Path) -> None:
        try:
            self.state.load_dataset(folder)
        except (OSError, ValueError) as exc:
            self.reason_label.setText(str(exc))
            return
        self.dataset_edit.setText(str(folder))
        self._fill_table()
        self.run_checks()

    def _fill_table(self) -> None:
        rows = self.state.rows
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            self.table.setItem(i, 0, QtWidgets.QTableWidgetItem(row.capture_id))
            self.table.setItem(i, 1, QtWidgets.QTableWidgetItem(row.patient or ""))
            combo = QtWidgets.QComboBox(self.table)
            for role in ROLES:
                combo.addItem(ROLE_TITLES[role], role)
            combo.setCurrentIndex(ROLES.index(self.state.role(row.capture_id)))
            combo.setEnabled(row.labelled)
            combo.currentIndexChanged.connect(lambda idx, cid=row.capture_id: self.set_role(cid, ROLES[idx]))
            self.table.setCellWidget(i, 2, combo)
            for k, class_id in enumerate(CLASS_IDS):
                n = "" if row.counts is None else f"{row.counts[class_id]:,}"
                item = QtWidgets.QTableWidgetItem(n)
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, 3 + k, item)
            note = row.problem or ("no labels" if not row.labelled else "")
            self.table.setItem(i, 3 + len(CLASS_IDS), QtWidgets.QTableWidgetItem(note))
        self.table.resizeColumnsToContents()
        self._sync()

    def set_role(self, capture_id: str, role: str) -> None:
        self.state.set_role(capture_id, role)
        for i, row in enumerate(self.state.rows):
            if row.capture_id == capture_id:
                combo = self.table.cellWidget(i, 2)
                if combo is not None and combo.currentIndex() != ROLES.index(role):
                    combo.blockSignals(True)
                    combo.setCurrentIndex(ROLES.index(role))
                    combo.blockSignals(False)
        self._sync()

    # ---- parameters
    def _params_changed(self, *_args) -> None:
        p = self.state.params
        p.epochs, p.batch_size = self.epochs_spin.value(), self.batch_spin.value()
        p.patch_size, p.folds = self.patch_spin.value(), self.folds_spin.value()
        p.lr, p.double_cv, p.seed = self.lr_spin.value(), self.cv_check.isChecked(), self.seed_spin.value()
        self.state.model_name = self.name_edit.text().strip()
        self._sync()

    def _backend_changed(self, _index: int) -> None:
        self.state.backend = self.backend_combo.currentData()
        self.run_checks()

    # ---- checks
    def run_checks(self) -> None:
        """Start the pre-flight checks on the worker; Start stays disabled until they pass."""
        self.state.checks = []
        self._checks_future = self._executor.submit(self._checks_job, self.state.backend)
        self._sync()

    def _checks_job(self, backend: str) -> tuple[list[Check], dict[str, float]]:
        checks = run_checks(self.env, backend)
        current: dict[str, float] = {}
        if self.current_model is not None and self.current_model.is_file():
            try:
                from core.model_file import load_model

                current = flat_metrics(load_model(self.current_model).info.metrics)
            except (OSError, ValueError):
                current = {}
        return checks, current

    @property
    def checks_running(self) -> bool:
        return self._checks_future is not None and not self._checks_future.done()

    # ---- run
    def start(self) -> None:
        if self.state.start_blocker is not None:
            return
        try:
            self.run = TrainingRun(self.env, self.state)
        except ValueError as exc:
            self.reason_label.setText(str(exc))
            return
        self.last = None
        self.installed = None
        self.loss_curve.setData([], [])
        self.oacc_curve.setData([], [])
        self.log_view.clear()
        self.metrics_table.setRowCount(0)
        self.state.running = True
        self.run.start()
        self._sync()

    def cancel(self) -> None:
        if self.run is not None and self.state.running:
            self.run.cancel()

    def _tick(self) -> None:
        if self._checks_future is not None and self._checks_future.done():
            future, self._checks_future = self._checks_future, None
            try:
                self.state.checks, self.current_metrics = future.result()
            except Exception as exc:  # a check that crashed must still block Start, with its reason
                self.state.checks = [Check("checks", False, str(exc) or exc.__class__.__name__)]
            self._sync()
        if self.run is None:
            return
        snap = self.run.snapshot()
        self._show(snap)
        if snap.terminal and self.state.running:
            self.state.running = False
            self._finished(snap)
            self._sync()

    def _show(self, snap: RunSnapshot) -> None:
        done, total = snap.upload
        self.upload_bar.setValue(int(100 * done / total) if total else 0)
        self.timeline_label.setText("  →  ".join(f"{s} ({t:.0f} s)" for s, t in snap.timeline))
        if snap.log != (self.last.log if self.last else None):
            self.log_view.setPlainText(snap.log)
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
        if self.last is None or len(snap.epochs) != len(self.last.epochs):
            x = list(range(1, len(snap.epochs) + 1))
            self.loss_curve.setData(x, [float(e.get("loss", float("nan"))) for e in snap.epochs])
            oacc = [(i, e["val_oacc"]) for i, e in zip(x, snap.epochs) if e.get("val_oacc") is not None]
            self.oacc_curve.setData([i for i, _ in oacc], [float(v) for _, v in oacc])
        remaining = snap.remaining_s()
        text = f"elapsed {snap.elapsed_s():.0f} s"
        if remaining is not None:
            text += f", about {remaining:.0f} s left"
        self.time_label.setText(text)
        self.last = snap

    def _finished(self, snap: RunSnapshot) -> None:
        if snap.error:
            self.reason_label.setText(f"job failed: {snap.error}")
        new = flat_metrics(snap.metrics)
        if snap.model_path is not None and not new:
            try:
                from core.model_file import load_model

                new = flat_metrics(load_model(snap.model_path).info.metrics)
            except (OSError, ValueError):
                new = {}
        keys = sorted(set(new) | set(self.current_metrics))
        self.metrics_table.setRowCount(len(keys))
        for i, key in enumerate(keys):
            self.metrics_table.setItem(i, 0, QtWidgets.QTableWidgetItem(key))
            for col, source in ((1, self.current_metrics), (2, new)):
                value = source.get(key)
                self.metrics_table.setItem(i, col, QtWidgets.QTableWidgetItem("" if value is None else f"{value:.4f}"))
        self.metrics_table.resizeColumnsToContents()

    def use_model(self) -> Path | None:
        """Install the new model (previous files kept) and make it the default model."""
        snap = self.last
        if snap is None or snap.model_path is None:
            return None
        try:
            path = install_model(snap.model_path, self.models_dir, name=f"{self.state.model_name}-{snap.job_id}")
        except (OSError, ValueError) as exc:
            self.reason_label.setText(f"cannot install the model: {exc}")
            return None
        if self.settings is not None:
            self.previous_model = self.settings.get("default_model")
            self.settings.set("default_model", str(path))
        self.installed = path
        self.reason_label.setText(f"installed {path.name}; it is now the default model")
        self.modelInstalled.emit(path)
        self._sync()
        return path

    # ---- enabling
    def _sync(self) -> None:
        blocker = self.state.start_blocker
        if blocker == "pre-flight checks have not run yet" and self.checks_running:
            blocker = "checking storage, credentials and backend…"
        self.start_button.setEnabled(blocker is None)
        self.start_button.setToolTip(blocker or "Upload the dataset and start training")
        if not (self.last and self.last.error):
            self.reason_label.setText(blocker or "")
        self.cancel_button.setEnabled(self.state.running)
        lines = [f"{'✓' if c.ok else '✗'} {c.name}" + ("" if c.ok else f": {c.message}") for c in self.state.checks]
        labels = self.state.labels_check()
        lines.insert(0, f"{'✓' if labels.ok else '✗'} labels" + ("" if labels.ok else f": {labels.message}"))
        self.checks_label.setText("\n".join(lines))
        self.warnings_label.setText("\n".join(self.state.class_warnings()) if self.state.rows else "")
        finished_ok = self.last is not None and self.last.model_path is not None and not self.state.running
        self.use_button.setEnabled(finished_ok and self.installed is None)
        editable = not self.state.running
        for w in (self.table, self.epochs_spin, self.batch_spin, self.patch_spin, self.folds_spin, self.lr_spin,
                  self.cv_check, self.seed_spin, self.backend_combo, self.name_edit, self.recheck_button):
            w.setEnabled(editable)

    def closeEvent(self, event) -> None:
        # a running job keeps running (the backend owns it); the dialog just stops watching
        self.timer.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)
