"""The training form of the retraining dialog, bound to ``state.params`` (a ``core.training.trainer.TrainingConfig``
with the thesis's defaults), backend and name.

Every widget writes straight into :class:`app.retraining.state.RetrainingState` on
change (STYLE.md 2: widgets bind to a state object) and emits ``changed``; the
backend combo emits ``backendChanged`` (the pre-flight checks depend on it).
"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.retraining.state import BACKENDS, RetrainingState
from core.training.config import TrainingConfig

BACKEND_TITLES = {"local": "Local (this computer)", "azureml": "Azure ML"}


class TrainingForm(QtWidgets.QGroupBox):
    changed = QtCore.Signal()
    backendChanged = QtCore.Signal(str)

    def __init__(self, state: RetrainingState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.state = state
        grid = QtWidgets.QGridLayout(self)  # two columns of fields: the dialog keeps its height for the captures
        p = state.params
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
        self.cv_check.setChecked(p.cross_validation == "double")
        self.backend_combo = QtWidgets.QComboBox(self)
        for name in BACKENDS:
            self.backend_combo.addItem(BACKEND_TITLES[name], name)
        self.backend_combo.setCurrentIndex(BACKENDS.index(state.backend))
        self.name_edit = QtWidgets.QLineEdit(state.model_name, self)
        fields = (("Epochs", self.epochs_spin), ("Batch size", self.batch_spin),
                  ("Patch size", self.patch_spin), ("Folds", self.folds_spin),
                  ("Learning rate", self.lr_spin), ("Seed", self.seed_spin),
                  ("", self.cv_check), ("Backend", self.backend_combo))
        for i, (label, widget) in enumerate(fields):
            row, col = divmod(i, 2)
            grid.addWidget(QtWidgets.QLabel(label, self), row, 2 * col)
            grid.addWidget(widget, row, 2 * col + 1)
        grid.addWidget(QtWidgets.QLabel("Model name", self), len(fields) // 2, 0)
        grid.addWidget(self.name_edit, len(fields) // 2, 1, 1, 3)
        self.name_edit.setToolTip("Base name: the dataset name, the date and a version number are added")
        for spin in (self.epochs_spin, self.batch_spin, self.patch_spin, self.folds_spin, self.seed_spin):
            spin.valueChanged.connect(self._write)
        self.lr_spin.valueChanged.connect(self._write)
        self.cv_check.toggled.connect(self._write)
        self.name_edit.textChanged.connect(self._write)
        self.backend_combo.currentIndexChanged.connect(self._backend)

    def _spin(self, low: int, high: int, value: int, *, step: int = 1) -> QtWidgets.QSpinBox:
        spin = QtWidgets.QSpinBox(self)
        spin.setRange(low, high)
        spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    def _write(self, *_args) -> None:
        # the spin boxes' ranges keep every value valid for TrainingConfig's checks
        self.state.params = TrainingConfig(
            epochs=self.epochs_spin.value(), batch_size=self.batch_spin.value(),
            patch_size=self.patch_spin.value(), folds=self.folds_spin.value(), lr=self.lr_spin.value(),
            cross_validation="double" if self.cv_check.isChecked() else "none", seed=self.seed_spin.value(),
        )
        self.state.model_name = self.name_edit.text().strip()
        self.changed.emit()

    def _backend(self, _index: int) -> None:
        self.state.backend = self.backend_combo.currentData()
        self.backendChanged.emit(self.state.backend)

    def memory(self) -> dict:
        """The form's values to remember between openings (JSON-able)."""
        p = self.state.params
        return {"epochs": p.epochs, "batch_size": p.batch_size, "patch_size": p.patch_size, "folds": p.folds,
                "lr": p.lr, "cross_validation": p.cross_validation, "seed": p.seed,
                "backend": self.state.backend, "model_name": self.state.model_name}

    def restore(self, memory: dict) -> None:
        """Show remembered values (unknown or out-of-range ones are ignored: the spin boxes clamp)."""
        spins = {"epochs": self.epochs_spin, "batch_size": self.batch_spin, "patch_size": self.patch_spin,
                 "folds": self.folds_spin, "seed": self.seed_spin}
        for key, spin in spins.items():
            if isinstance(memory.get(key), int):
                spin.setValue(memory[key])
        if isinstance(memory.get("lr"), (int, float)):
            self.lr_spin.setValue(float(memory["lr"]))
        if memory.get("cross_validation") in ("double", "none"):
            self.cv_check.setChecked(memory["cross_validation"] == "double")
        if isinstance(memory.get("model_name"), str) and memory["model_name"].strip():
            self.name_edit.setText(memory["model_name"])
        if memory.get("backend") in BACKENDS:
            self.backend_combo.setCurrentIndex(BACKENDS.index(memory["backend"]))

    def set_editable(self, editable: bool) -> None:
        for w in (self.epochs_spin, self.batch_spin, self.patch_spin, self.folds_spin, self.lr_spin,
                  self.cv_check, self.seed_spin, self.backend_combo, self.name_edit):
            w.setEnabled(editable)


def recall_form(settings, form: TrainingForm) -> dict:
    """Show the form values remembered in ``settings`` (an AppSettings, or None); returns them with the dataset."""
    import json

    if settings is None:
        return {}
    try:
        data = json.loads(settings.get("retraining_memory") or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    form.restore(data)
    return data


def remember_form(settings, form: TrainingForm, dataset) -> None:
    """Keep the form values and the dataset folder for the next opening (also after a restart)."""
    import json

    if settings is None:
        return
    data = form.memory()
    data["dataset"] = "" if dataset is None else str(dataset)
    settings.set("retraining_memory", json.dumps(data))
