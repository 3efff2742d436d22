"""Settings dialog: scoring endpoint and key, the installed model, fallback, palette, theatre mode, ensemble,
uncertainty flag.

The dialog owns a :class:`SettingsState` and binds its widgets to it (glue-qt
style): tests set the state without showing the dialog. The endpoint key is
kept in the OS keyring (:mod:`remote.credentials`), never in QSettings. On a
machine without a keyring (detected once) the dialog says so and offers to use
the key for this session only (memory, never disk); the key is only written
when it was edited, so OK never fails on a field the user did not touch.
"Test connection" pings the endpoint in a worker and reports the latency.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.settings import AppSettings
from core.classes import PALETTES
from core.model.uncertainty import SHOW_BY_DEFAULT


@dataclass
class SettingsState:
    endpoint_url: str = ""
    endpoint_key: str = ""
    endpoint_auth: str = "key"  # or "entra": the signed-in user's Entra ID token (aad_token endpoints)
    use_remote: bool = True
    fallback_local: bool = True
    palette: str = "thesis"
    theatre_mode: bool = False
    use_ensemble: bool = False
    show_uncertain: bool = SHOW_BY_DEFAULT
    uncertainty_threshold: int = 50  # percent
    live_stale_after_s: int = 10  # live mode: the stale-map banner after this many seconds without a capture
    key_session_only: bool = False  # keep the key in memory until the app closes (no keyring here)
    keyring_available: bool = field(default=True, compare=False)
    loaded_key: str = field(default="", compare=False, repr=False)  # the key as read: untouched means unchanged

    @classmethod
    def from_settings(cls, settings: AppSettings) -> "SettingsState":
        try:
            key = settings.endpoint_key() or ""
        except ValueError:  # keyring unusable: the dialog still opens, the key field starts empty
            key = ""
        stored = {f.name for f in fields(cls)} - _NOT_IN_SETTINGS
        values = {name: settings.get(name) for name in stored}
        available = settings.keyring_available()
        return cls(endpoint_key=key, key_session_only=settings.key_is_session_only() or not available,
                   keyring_available=available, loaded_key=key, **values)

    def validate(self) -> None:
        url = self.endpoint_url.strip()
        if url and not url.lower().startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"endpoint URL {url!r} must use https:// (plain http only for this machine)")
        if self.endpoint_auth not in ("key", "entra"):
            raise ValueError(f"endpoint sign-in must be 'key' or 'entra', got {self.endpoint_auth!r}")
        if self.palette not in PALETTES:
            raise ValueError(f"unknown palette {self.palette!r}")
        if not 0 <= self.uncertainty_threshold <= 100:
            raise ValueError(f"uncertainty threshold must be 0-100 %, got {self.uncertainty_threshold}")
        if not 1 <= int(self.live_stale_after_s) <= 3600:
            raise ValueError(f"stale-map threshold must be 1..3600 s, got {self.live_stale_after_s}")

    def save(self, settings: AppSettings) -> None:
        """Write to QSettings; the key goes to the keyring (or memory, session only), and only if edited."""
        self.validate()
        for f in fields(self):
            if f.name not in _NOT_IN_SETTINGS:
                settings.set(f.name, getattr(self, f.name))
        key = self.endpoint_key.strip()
        if key != self.loaded_key.strip() or self.key_session_only != settings.key_is_session_only():
            settings.set_endpoint_key(key or None, session_only=self.key_session_only)
            self.loaded_key = key
        settings.sync()


_NOT_IN_SETTINGS = {"endpoint_key", "key_session_only", "keyring_available", "loaded_key"}


def ping_job(url: str, key: str | None):
    """Worker job: seconds a ``ScoringClient.ping()`` round trip took."""
    from remote.scoring_client import ScoringClient

    yield None  # a cancel point before the network call
    with ScoringClient(url, key=key, retries=0, timeout=(3.0, 10.0)) as client:
        return client.ping()


def installed_model_text() -> str:
    """"conv2dnet-ds-20261207 v3 (installed by ana, 2026-12-07 14:02 UTC)", or the demo model."""
    from core.model.installed import ModelStore

    entry = ModelStore().current()
    if entry is None:
        return "the bundled demo model (nothing installed)"
    when = entry.when[:16].replace("T", " ")
    return f"{entry.shown} ({entry.action}ed by {entry.user or 'unknown'}, {when} UTC)"


class SettingsDialog(QDialog):
    """Thin view over a :class:`SettingsState`."""

    connection_tested = Signal(str)  # the result line shown next to the button

    def __init__(self, state: SettingsState | None = None, parent: QWidget | None = None, *,
                 app_settings: AppSettings | None = None) -> None:
        super().__init__(parent)
        self.app_settings = app_settings  # for the Cloud page (storage, Azure ML), saved as it is edited
        self.setWindowTitle("NeuroHSI settings")
        self.setObjectName("settings_dialog")
        self.state = state if state is not None else SettingsState()
        self._worker = None

        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("https://<endpoint>.<region>.inference.ml.azure.com/score")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("stored in the system keyring")
        self.session_key_check = QCheckBox("Use the key for this session only (kept in memory, never on disk)")
        self.session_key_check.setObjectName("session_key_check")
        self.keyring_note = QLabel("No keyring on this machine: endpoint keys cannot be stored here.")
        self.keyring_note.setObjectName("keyring_note")
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setStyleSheet("color: #ffb000;")
        self.use_remote_check = QCheckBox("Classify on the endpoint when one is set")
        self.fallback_check = QCheckBox("Classify locally when the endpoint fails")
        self.entra_check = QCheckBox("Sign in with Microsoft Entra ID instead of a key (aad_token endpoint)")
        self.test_button = QPushButton("Test connection")
        self.test_result = QLabel("")
        self.test_result.setObjectName("test_connection_result")
        self.model_label = QLabel(installed_model_text())  # the store's model: the one every classify uses
        self.model_label.setObjectName("installed_model")
        self.model_label.setWordWrap(True)
        browse = QPushButton("Install a model file…")
        browse.setToolTip("Copy a .safetensors model into the models folder and use it (kept in the model history)")
        browse.clicked.connect(self._browse_model)
        self.palette_combo = QComboBox()
        for name in PALETTES:
            self.palette_combo.addItem({"thesis": "Thesis colours", "colourblind": "Colour-blind safe"}.get(name, name),
                                       name)
        self.theatre_check = QCheckBox("Theatre mode (full screen, only the map and a large legend; F11)")
        self.ensemble_check = QCheckBox("Classify with the model's ensemble (steadier, about 5x slower)")
        self.uncertain_check = QCheckBox("Hatch pixels the model is unsure of")
        self.threshold_spin = QSpinBox()
        self.threshold_spin.setObjectName("uncertainty_threshold")
        self.threshold_spin.setRange(0, 100)
        self.threshold_spin.setSuffix(" %")
        self.threshold_spin.setToolTip("Flag a pixel when its uncertainty (0 % sure, 100 % all classes alike) exceeds this")
        self.stale_spin = QSpinBox()
        self.stale_spin.setObjectName("settings_live_stale")
        self.stale_spin.setRange(1, 3600)
        self.stale_spin.setSuffix(" s")
        self.stale_spin.setToolTip("Live mode: a banner with the map's age when no new capture came for this long")
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #ff7070;")

        form = QFormLayout()
        form.addRow("Endpoint URL", self.url_edit)
        form.addRow("Endpoint key", self.key_edit)
        form.addRow("", self.keyring_note)
        form.addRow("", self.session_key_check)
        form.addRow("", self.entra_check)
        form.addRow("", self.use_remote_check)
        form.addRow("", self.fallback_check)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        form.addRow("", test_row)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_label, 1)
        model_row.addWidget(browse)
        form.addRow("Model", model_row)
        form.addRow("Palette", self.palette_combo)
        form.addRow("", self.theatre_check)
        form.addRow("", self.ensemble_check)
        form.addRow("", self.uncertain_check)
        form.addRow("Uncertain above", self.threshold_spin)
        form.addRow("Live map stale after", self.stale_spin)
        self.cloud_button = QPushButton("Cloud: storage and Azure ML…")
        self.cloud_button.setObjectName("cloud_button")
        self.cloud_button.clicked.connect(self.open_cloud)
        self.cloud_button.setVisible(app_settings is not None)
        form.addRow("", self.cloud_button)
        self.pacs_button = QPushButton("PACS and audit operator…")
        self.pacs_button.setObjectName("pacs_button")
        self.pacs_button.clicked.connect(self.open_pacs)
        self.pacs_button.setVisible(app_settings is not None)
        form.addRow("", self.pacs_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

        self.set_state(self.state)
        self.url_edit.textChanged.connect(lambda t: setattr(self.state, "endpoint_url", t))
        self.key_edit.textChanged.connect(lambda t: setattr(self.state, "endpoint_key", t))
        self.use_remote_check.toggled.connect(lambda v: setattr(self.state, "use_remote", v))
        self.fallback_check.toggled.connect(lambda v: setattr(self.state, "fallback_local", v))
        self.entra_check.toggled.connect(lambda v: setattr(self.state, "endpoint_auth", "entra" if v else "key"))
        self.palette_combo.currentIndexChanged.connect(
            lambda i: setattr(self.state, "palette", self.palette_combo.itemData(i))
        )
        self.theatre_check.toggled.connect(lambda v: setattr(self.state, "theatre_mode", v))
        self.stale_spin.valueChanged.connect(lambda v: setattr(self.state, "live_stale_after_s", int(v)))
        self.session_key_check.toggled.connect(lambda v: setattr(self.state, "key_session_only", v))
        self.ensemble_check.toggled.connect(lambda v: setattr(self.state, "use_ensemble", v))
        self.uncertain_check.toggled.connect(lambda v: setattr(self.state, "show_uncertain", v))
        self.threshold_spin.valueChanged.connect(lambda v: setattr(self.state, "uncertainty_threshold", v))
        self.test_button.clicked.connect(self.test_connection)

    def set_state(self, state: SettingsState) -> None:
        """Show ``state`` in the widgets (the widgets then edit it)."""
        self.state = state
        self.url_edit.setText(state.endpoint_url)
        self.key_edit.setText(state.endpoint_key)
        self.keyring_note.setVisible(not state.keyring_available)
        self.session_key_check.setVisible(not state.keyring_available or state.key_session_only)
        self.session_key_check.setChecked(state.key_session_only)
        self.key_edit.setPlaceholderText("stored in the system keyring" if state.keyring_available
                                         else "not stored: this machine has no keyring")
        self.use_remote_check.setChecked(state.use_remote)
        self.fallback_check.setChecked(state.fallback_local)
        self.entra_check.setChecked(state.endpoint_auth == "entra")
        self.palette_combo.setCurrentIndex(max(self.palette_combo.findData(state.palette), 0))
        self.theatre_check.setChecked(state.theatre_mode)
        self.ensemble_check.setChecked(state.use_ensemble)
        self.uncertain_check.setChecked(state.show_uncertain)
        self.threshold_spin.setValue(state.uncertainty_threshold)
        self.stale_spin.setValue(int(state.live_stale_after_s))

    def accept(self) -> None:
        try:
            self.state.validate()
            if self.state.endpoint_key.strip() and not (self.state.keyring_available or self.state.key_session_only):
                raise ValueError("this machine has no keyring: tick \"use for this session only\" or clear the key")
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        super().accept()

    def open_cloud(self):
        """Settings ▸ Cloud (app.retraining.cloud_page): storage sign-in and Azure ML, each with a Test button."""
        from app.retraining.cloud_page import open_cloud_settings

        return open_cloud_settings(self.app_settings, self)

    def open_pacs(self):
        """Settings ▸ PACS (app.pacs_settings): the node with a "Test" (C-ECHO) button, the operator's name."""
        from app.pacs_settings import open_pacs_settings

        return open_pacs_settings(self.app_settings, self)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.safetensors)")
        if path:
            self.install_model_file(path)

    def install_model_file(self, path: str) -> None:
        """Install ``path`` into the store on a worker (copied, verified, recorded); the label names it."""
        from pathlib import Path

        from app.retraining.installing import install_job
        from app.job_runner import run_job
        from core.errors import one_line
        from core.model.installed import ModelStore

        self.model_label.setText("Installing…")
        self._install_worker = run_job(
            install_job, Path(path), ModelStore(), Path(path).stem, "installed from Settings ▸ Model (not compared)",
            on_yield=lambda _v: None, on_return=lambda _entry: self.model_label.setText(installed_model_text()),
            on_error=lambda exc: (self.model_label.setText(installed_model_text()),
                                  self.error_label.setText(f"Not installed: {one_line(exc)}")))

    def test_connection(self) -> None:
        """Ping the endpoint in a worker; the latency (or the problem) appears next to the button."""
        from core.errors import one_line
        from app.job_runner import run_job

        url = self.state.endpoint_url.strip()
        if not url:
            self._report_test("No endpoint URL set")
            return
        self.test_button.setEnabled(False)
        self.test_result.setText("Testing…")
        self._worker = run_job(
            ping_job,
            url,
            self.state.endpoint_key.strip() or None,
            on_return=lambda seconds: self._report_test(f"OK — {1000 * seconds:.0f} ms"),
            on_error=lambda exc: self._report_test(f"Failed: {one_line(exc)}"),
            owner=self, context="Test connection",
        )

    def _report_test(self, text: str) -> None:
        self._worker = None
        self.test_button.setEnabled(True)
        self.test_result.setText(text)
        self.connection_tested.emit(text)
