"""Settings ▸ Cloud: storage account and sign-in, Azure ML workspace, each with a "Test" button.

Field names are :mod:`remote.cloud_config`'s, the CLI's too; a field set by an
environment variable (``NEUROHSI_*``) is shown greyed with the variable's name,
since it wins over what is saved. Secrets (connection string, account key, SAS
token) go straight to the keyring, never into settings. "Test" runs the check on
the app's job runner and answers in one line what works.
"""
from __future__ import annotations

from collections.abc import Callable, Generator

from PySide6 import QtCore, QtWidgets

from app.job_runner import run_job
from core.errors import one_line
from remote.cloud_config import AUTH_TITLES, ENV_VARS, STORAGE_AUTH_METHODS, CloudConfig, check_azureml, \
    check_storage, overridden, resolve

SECRET_FOR = {"connection-string": "storage-connection-string", "account-key": "storage-account-key",
              "sas": "storage-sas-token"}
FIELD_TITLES = {
    "storage_account_url": "Storage account URL", "container": "Container",
    "subscription_id": "Subscription id", "resource_group": "Resource group", "workspace": "Workspace",
    "compute": "Compute cluster", "environment": "Environment", "tenant_id": "Tenant id",
    "client_id": "Client id (NeuroHSI app registration)",
}
PLACEHOLDERS = {
    "storage_account_url": "https://<account>.blob.core.windows.net", "environment": "neurohsi-train@latest",
    "container": "neurohsi",
}


def check_job(kind: str, config: CloudConfig) -> Generator[str, None, tuple[bool, str]]:
    """Generator job: ``check_storage`` or ``check_azureml`` (network: never on the GUI thread)."""
    yield f"testing {kind}"
    return check_storage(config) if kind == "storage" else check_azureml(config)


def store_secret_job(name: str, value: str, session_only: bool = False) -> Generator[str, None, str]:
    """Generator job: the secret into the keyring, or (no keyring here) into memory for this session only."""
    yield f"storing {name}"
    from remote.credentials import set_secret, set_session_secret

    if session_only:
        set_session_secret(name, value)
        return f"{name} kept for this session only (no keyring on this machine; never written to disk)"
    set_secret(name, value)
    return f"{name} stored in the keyring"


class CloudPage(QtWidgets.QWidget):
    """``load()`` gives the saved values (field -> text), ``save(values)`` keeps them (no secrets in either)."""

    def __init__(self, load: Callable[[], dict], save: Callable[[dict], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._load, self._save = load, save
        self._workers: dict[str, object] = {}
        layout = QtWidgets.QVBoxLayout(self)
        self.edits: dict[str, QtWidgets.QLineEdit] = {}

        storage = QtWidgets.QGroupBox("Blob storage (datasets and models)", self)
        form = QtWidgets.QFormLayout(storage)
        self.auth_combo = QtWidgets.QComboBox(storage)
        for method in STORAGE_AUTH_METHODS:
            self.auth_combo.addItem(AUTH_TITLES[method], method)
        form.addRow("Sign-in", self.auth_combo)
        for name in ("storage_account_url", "container"):
            form.addRow(FIELD_TITLES[name], self._edit(name, storage))
        self.secret_edit = QtWidgets.QLineEdit(storage)
        self.secret_edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        from remote.credentials import keyring_available

        self.session_only = not keyring_available()  # no keyring: the secret lives in memory until the app closes
        self.secret_edit.setPlaceholderText(
            "no keyring on this machine: kept in memory for this session only, never on disk" if self.session_only
            else "paste it here; it is stored in the system keyring, not in settings")
        self.secret_button = QtWidgets.QPushButton(
            "Use for this session only" if self.session_only else "Store in keyring", storage)
        self.secret_button.setObjectName("secret_button")
        self.secret_button.clicked.connect(self.store_secret)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.secret_edit, 1)
        row.addWidget(self.secret_button)
        self.secret_label = QtWidgets.QLabel("Secret", storage)
        form.addRow(self.secret_label, row)
        self.storage_button = QtWidgets.QPushButton("Test storage", storage)
        self.storage_result = QtWidgets.QLabel(storage)
        self.storage_result.setObjectName("storage_result")
        self.storage_result.setWordWrap(True)
        self.storage_button.clicked.connect(lambda: self.test("storage"))
        form.addRow(self.storage_button, self.storage_result)
        layout.addWidget(storage)

        azureml = QtWidgets.QGroupBox("Azure Machine Learning (training in the cloud)", self)
        form = QtWidgets.QFormLayout(azureml)
        for name in ("subscription_id", "resource_group", "workspace", "compute", "environment", "tenant_id",
                     "client_id"):
            form.addRow(FIELD_TITLES[name], self._edit(name, azureml))
        self.azureml_button = QtWidgets.QPushButton("Test Azure ML", azureml)
        self.azureml_result = QtWidgets.QLabel(azureml)
        self.azureml_result.setObjectName("azureml_result")
        self.azureml_result.setWordWrap(True)
        self.azureml_button.clicked.connect(lambda: self.test("azureml"))
        form.addRow(self.azureml_button, self.azureml_result)
        layout.addWidget(azureml)
        note = QtWidgets.QLabel("Environment variables NEUROHSI_* override these settings (greyed fields); "
                                "the neurohsi command line reads the same names.", self)
        note.setWordWrap(True)
        note.setStyleSheet("color: gray")
        layout.addWidget(note)
        layout.addStretch(1)
        self.auth_combo.currentIndexChanged.connect(self._auth_changed)
        self.reload()

    def _edit(self, name: str, parent: QtWidgets.QWidget) -> QtWidgets.QLineEdit:
        edit = QtWidgets.QLineEdit(parent)
        edit.setPlaceholderText(PLACEHOLDERS.get(name, ""))
        edit.editingFinished.connect(self.save)
        self.edits[name] = edit
        return edit

    def reload(self) -> None:
        """Show the saved values; fields an env variable sets are read-only and say so."""
        saved = self._load()
        env = overridden()
        effective = resolve(saved)
        for name, edit in self.edits.items():
            if name in env:
                edit.setText(getattr(effective, name))
                edit.setEnabled(False)
                edit.setToolTip(f"set by the environment variable {env[name]}")
            else:
                edit.setText(saved.get(name, ""))
                edit.setEnabled(True)
                edit.setToolTip(f"also settable with {ENV_VARS[name]}")
        self.auth_combo.blockSignals(True)
        self.auth_combo.setCurrentIndex(STORAGE_AUTH_METHODS.index(effective.storage_auth))
        self.auth_combo.blockSignals(False)
        self.auth_combo.setEnabled("storage_auth" not in env)
        self._auth_changed(save=False)

    def values(self) -> dict:
        """What the user entered (not the env overrides), ready to save."""
        out = {name: edit.text().strip() for name, edit in self.edits.items() if edit.isEnabled()}
        if self.auth_combo.isEnabled():
            out["storage_auth"] = self.auth_combo.currentData()
        return out

    def save(self) -> None:
        self._save(self.values())

    def config(self) -> CloudConfig:
        """The effective settings the Test buttons check (env over what is on the page)."""
        return resolve(self.values())

    def _auth_changed(self, *_args, save: bool = True) -> None:
        method = self.auth_combo.currentData()
        secret = SECRET_FOR.get(method)
        for widget in (self.secret_edit, self.secret_button, self.secret_label):
            widget.setVisible(secret is not None)
        if secret is not None:
            self.secret_label.setText({"connection-string": "Connection string", "account-key": "Account key",
                                       "sas": "SAS token"}[method])
        self.edits["storage_account_url"].setEnabled(method != "connection-string"
                                                     and "storage_account_url" not in overridden())
        if save:
            self.save()

    def store_secret(self) -> None:
        value = self.secret_edit.text().strip()
        name = SECRET_FOR.get(self.auth_combo.currentData())
        if not value or name is None:
            return
        self.secret_edit.clear()  # the secret leaves the widget at once
        self._run("secret", store_secret_job, name, value, self.session_only,
                  on_return=self.storage_result.setText)

    def test(self, kind: str) -> None:
        """Run the storage or Azure ML check on a worker; its one line lands beside the button."""
        self.save()
        label = self.storage_result if kind == "storage" else self.azureml_result
        label.setText("testing…")
        self._run(kind, check_job, kind, self.config(), on_return=lambda result: self._tested(label, result))

    @staticmethod
    def _tested(label: QtWidgets.QLabel, result: tuple[bool, str]) -> None:
        ok, line = result
        label.setText(("✓ " if ok else "✗ ") + line)
        label.setStyleSheet("" if ok else "color: #e06060")

    def _run(self, kind: str, job, *args, on_return) -> None:
        def failed(exc: BaseException) -> None:
            (self.azureml_result if kind == "azureml" else self.storage_result).setText(f"✗ {one_line(exc)}")

        def finished() -> None:
            self._workers.pop(kind, None)

        self._workers[kind] = run_job(job, *args, on_return=on_return, on_error=failed, on_finish=finished,
                                      owner=self, context=f"Cloud settings ({kind})")

    @property
    def busy(self) -> bool:
        return bool(self._workers)


class CloudSettingsDialog(QtWidgets.QDialog):
    """The Cloud page on its own (opened from the retraining dialog)."""

    def __init__(self, load: Callable[[], dict], save: Callable[[dict], None],
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cloud settings")
        layout = QtWidgets.QVBoxLayout(self)
        self.page = CloudPage(load, save, self)
        layout.addWidget(self.page)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(720, 620)
        QtCore.QTimer.singleShot(0, self.page.reload)


def load_cloud_settings(settings) -> dict:
    """Saved Settings ▸ Cloud values of an :class:`app.settings.AppSettings` (registry names ``cloud_<field>``)."""
    if settings is None:
        return {}
    return {name: settings.get(f"cloud_{name}") for name in ENV_VARS if settings.get(f"cloud_{name}")}


def save_cloud_settings(settings, values: dict) -> None:
    if settings is None:
        return
    for name, value in values.items():
        if name in ENV_VARS:
            settings.set(f"cloud_{name}", value)


def open_cloud_settings(settings, parent: QtWidgets.QWidget | None = None) -> CloudSettingsDialog:
    """Show Settings ▸ Cloud for an :class:`app.settings.AppSettings` (non-modal; returns the dialog)."""
    dialog = CloudSettingsDialog(lambda: load_cloud_settings(settings), lambda v: save_cloud_settings(settings, v),
                                 parent)
    dialog.show()
    return dialog
