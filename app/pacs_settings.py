"""Settings ▸ PACS: the node (AE title, host, port, TLS, our AE title, CA file), a "Test" (C-ECHO) button,
and the operator named in the audit log. A thin view over :class:`app.pacs_state.PacsSettingsState`."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.pacs_state import PacsSettingsState, echo_job

_TEXT_FIELDS = (
    ("ae_title", "PACS AE title", "e.g. ORTHANC"),
    ("host", "Host", "pacs.hospital.local"),
    ("port", "Port", "104 or 11112"),
    ("calling_ae", "Our AE title", "NEUROHSI"),
    ("ca_file", "CA file (TLS)", "empty: the system's certificates"),
    ("operator_name", "Operator (audit log)", "who is at this workstation, on a shared login"),
)


class PacsSettingsDialog(QDialog):
    tested = Signal(str)  # the line shown next to "Test"

    def __init__(self, state: PacsSettingsState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings ▸ PACS")
        self.setObjectName("pacs_settings_dialog")
        self.state = state
        self._worker = None
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        for name, label, hint in _TEXT_FIELDS:
            edit = QLineEdit(str(getattr(state, name)))
            edit.setObjectName(f"pacs_{name}")
            edit.setPlaceholderText(hint)
            edit.textChanged.connect(lambda text, n=name: setattr(self.state, n, text))
            self.edits[name] = edit
            form.addRow(label, edit)
        self.tls_check = QCheckBox("Use TLS (the PACS's certificate is verified)")
        self.tls_check.setObjectName("pacs_tls")
        self.tls_check.setChecked(state.tls)
        self.tls_check.toggled.connect(lambda on: setattr(self.state, "tls", on))
        form.addRow("", self.tls_check)
        self.test_button = QPushButton("Test")
        self.test_button.setObjectName("pacs_test")
        self.test_button.setToolTip("C-ECHO: does the PACS answer us?")
        self.test_button.clicked.connect(self.test)
        self.test_result = QLabel("")
        self.test_result.setObjectName("pacs_test_result")
        self.test_result.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addWidget(self.test_result, 1)
        form.addRow("", row)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #ff7070;")
        self.error_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def accept(self) -> None:
        try:
            self.state.validate()
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        super().accept()

    def test(self) -> None:
        """C-ECHO on a worker; the answer (or the problem) appears next to the button."""
        from app.job_runner import run_job
        from core.errors import one_line

        try:
            node = self.state.node()
        except ValueError as exc:
            self._report(f"Failed: {one_line(exc)}")
            return
        self.test_button.setEnabled(False)
        self.test_result.setText("Testing…")
        self._worker = run_job(echo_job, node, on_yield=lambda _v: None, on_return=lambda line: self._report(f"OK — {line}"),
                                 on_error=lambda exc: self._report(f"Failed: {one_line(exc)}"))

    def _report(self, text: str) -> None:
        self._worker = None
        self.test_button.setEnabled(True)
        self.test_result.setText(text)
        self.tested.emit(text)


def open_pacs_settings(settings, parent: QWidget | None = None) -> PacsSettingsDialog:
    """Show Settings ▸ PACS for ``settings`` (an ``app.settings.AppSettings``); saved when accepted."""
    dialog = PacsSettingsDialog(PacsSettingsState.from_settings(settings), parent)
    dialog.accepted.connect(lambda: dialog.state.save(settings))
    dialog.open()
    return dialog
