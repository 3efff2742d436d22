"""Help ▸ About: version and build, the model in use, licences, research use; "Copy diagnostics".

:func:`diagnostics_text` is what support asks for on a call: versions, paths,
model identity and the settings in use, never a secret (the endpoint key is
not read at all, and every line goes through :func:`core.redaction.redact`).
"""
from __future__ import annotations

import platform
import sys
from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.build_info import build_info
from app.status_panel import BANNER_TEXT

RESEARCH_STATEMENT = (
    "Research use only — not for diagnostic use. The maps support, and never replace, the surgeon's "
    "judgement; every map names the model that produced it."
)
# (distribution, licence) of the components shipped with the app and its bundle.
BUNDLED_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("PySide6-Essentials", "LGPL-3.0 (Qt for Python)"),
    ("shiboken6", "LGPL-3.0"),
    ("pyqtgraph", "MIT"),
    ("superqt", "BSD-3-Clause"),
    ("numpy", "BSD-3-Clause"),
    ("scipy", "BSD-3-Clause"),
    ("torch", "BSD-3-Clause"),
    ("onnxruntime", "MIT"),
    ("safetensors", "Apache-2.0"),
    ("tifffile", "BSD-3-Clause"),
    ("imagecodecs", "BSD-3-Clause"),
    ("pillow", "MIT-CMU (HPND)"),
    ("requests", "Apache-2.0"),
    ("keyring", "MIT"),
    ("azure-storage-blob", "MIT"),
    ("pydicom", "MIT"),
    ("highdicom", "MIT"),
    ("pynetdicom", "MIT"),
)
# Settings shown in diagnostics by value; the rest by name only (layouts are bytes, files are paths).
_DIAGNOSTIC_VALUES = ("endpoint_url", "use_remote", "fallback_local", "palette", "theatre_mode",
                      "opacity")


def component_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def model_identity_text(window) -> str:
    """The model of the map on screen, else the one loaded at start-up, else what is configured."""
    result = getattr(window, "result", None)
    info = getattr(result, "model", None)
    if info is None:
        loaded = getattr(getattr(window, "model_loader", None), "model", None)
        info = getattr(loaded, "info", None)
    if info is not None:
        return f"{info.name} v{info.version} · sha256 {info.sha256} · created {info.created or '?'}"
    path = window.model_path()
    return f"not loaded ({path if path is not None else 'none configured'})"


def diagnostics_text(window) -> str:
    """Plain text for a support call (no secrets)."""
    from core.model.ort_runtime import describe_runtime
    from core.redaction import redact
    from resources import RESOURCES_DIR

    info = build_info()
    settings = window.settings
    lines = [
        f"NeuroHSI {info['version']}" + (f" (bundle built {info['build_date']})" if info["build_date"] else "")
        + (f" commit {info['commit']}" if info.get("commit") else ""),
        f"bundled: {info['bundled']}",
        f"python: {platform.python_version()} ({sys.executable})",
        f"platform: {platform.platform()}",
        "components: " + ", ".join(f"{d} {component_version(d)}" for d, _ in BUNDLED_COMPONENTS),
        f"resources: {RESOURCES_DIR}",
        f"settings file: {settings.qsettings.fileName()}",
        f"model: {model_identity_text(window)}",
        f"model file: {window.model_path()}",
        f"inference: {describe_runtime()}",
        f"keyring available: {settings.keyring_available()}",
        "settings: " + ", ".join(f"{name}={settings.get(name)!r}" for name in _DIAGNOSTIC_VALUES),
        "settings keys: " + ", ".join(s.key for s in _settings_table()),
    ]
    opened = getattr(window, "opened", None)
    if opened is not None:
        lines.append(f"capture: {opened.capture.capture_id} ({opened.capture.raw_path})")
    return redact("\n".join(lines))


def _settings_table():
    from app.settings import SETTINGS

    return SETTINGS


class AboutDialog(QDialog):
    """Version, build, model, licences, the research-use statement and a "Copy diagnostics" button."""

    def __init__(self, window, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.setObjectName("about_dialog")
        self.setWindowTitle("About NeuroHSI")
        self.window_ = window
        info = build_info()
        built = info["build_date"] or "not a bundle (source install)"
        if info.get("commit"):
            built += f" · commit {info['commit'][:12]}"
        self.version_label = QLabel(
            f"<h2>NeuroHSI {info['version']}</h2>"
            f"Build: {built}{' · desktop bundle' if info['bundled'] else ''}<br>"
            f"Model: {model_identity_text(window)}"
        )
        self.version_label.setObjectName("about_version")
        self.version_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.version_label.setWordWrap(True)
        statement = QLabel(f"<b>{BANNER_TEXT}.</b> {RESEARCH_STATEMENT.split('. ', 1)[1]}")
        statement.setObjectName("about_research_use")
        statement.setWordWrap(True)
        self.licences = QTableWidget(len(BUNDLED_COMPONENTS), 3)
        self.licences.setObjectName("about_licences")
        self.licences.setHorizontalHeaderLabels(["Component", "Version", "Licence"])
        for row, (name, licence) in enumerate(BUNDLED_COMPONENTS):
            for col, text in enumerate((name, component_version(name), licence)):
                self.licences.setItem(row, col, QTableWidgetItem(text))
        self.licences.resizeColumnsToContents()
        self.licences.verticalHeader().hide()
        self.copy_button = QPushButton("Copy diagnostics")
        self.copy_button.setObjectName("about_copy_diagnostics")
        self.copy_button.setToolTip("Versions, paths, model identity and settings (no keys) for a support call")
        self.copy_button.clicked.connect(self.copy_diagnostics)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.version_label)
        layout.addWidget(statement)
        layout.addWidget(QLabel("Bundled components and their licences:"))
        layout.addWidget(self.licences, 1)
        layout.addWidget(buttons)
        self.resize(620, 560)

    def copy_diagnostics(self) -> str:
        text = diagnostics_text(self.window_)
        QApplication.clipboard().setText(text)
        self.copy_button.setText("Copied")
        return text


def show_about(window) -> AboutDialog:
    """Help ▸ About, non-modal."""
    dialog = AboutDialog(window)
    dialog.open()
    return dialog
