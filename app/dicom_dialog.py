"""File ▸ Export to DICOM / PACS: patient and study typed by the user, SC + SEG written, optionally sent.

A thin view over :class:`app.pacs_state.DicomExportState`. Bad input keeps the dialog
open with the problem under the fields; an unusable capture needs "Export anyway"
ticked, and then the objects say so. The export and the send run on a worker.
"""
from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.pacs_state import DicomExportState
from core.output.dicom import NOTICE

_FIELDS = (
    ("patient_id", "Patient ID *", "as on the wristband / order (required)"),
    ("patient_name", "Patient name", "Family^Given"),
    ("accession_number", "Accession number", "from the order"),
    ("study_instance_uid", "Study Instance UID", "from the order; empty: a new study"),
    ("study_id", "Study ID", ""),
    ("study_description", "Study description", ""),
)


class DicomExportDialog(QDialog):
    def __init__(self, state: DicomExportState, parent: QWidget | None = None, *, unusable: bool = False,
                 pacs_label: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export to DICOM / PACS")
        self.setObjectName("dicom_export_dialog")
        self.state = state
        self.unusable = unusable
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        for name, label, hint in _FIELDS:
            edit = QLineEdit(getattr(state, name))
            edit.setObjectName(f"dicom_{name}")
            edit.setPlaceholderText(hint)
            edit.textChanged.connect(lambda text, n=name: setattr(self.state, n, text))
            self.edits[name] = edit
            form.addRow(label, edit)
        self.out_edit = QLineEdit(state.out_dir)
        self.out_edit.setObjectName("dicom_out_dir")
        self.out_edit.textChanged.connect(lambda text: setattr(self.state, "out_dir", text))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        self.send_check = QCheckBox(f"Send to PACS {pacs_label}" if pacs_label else "Send to PACS (set it up in "
                                    "Settings ▸ PACS)")
        self.send_check.setObjectName("dicom_send")
        self.send_check.setEnabled(pacs_label is not None)
        self.send_check.setChecked(state.send and pacs_label is not None)
        self.send_check.toggled.connect(lambda on: setattr(self.state, "send", on))
        form.addRow("", self.send_check)
        self.force_check = QCheckBox("Export anyway: the capture is unusable (the objects will say so)")
        self.force_check.setObjectName("dicom_force")
        self.force_check.setVisible(unusable)
        self.force_check.toggled.connect(lambda on: setattr(self.state, "force", on))
        form.addRow("", self.force_check)
        notice = QLabel(f"{NOTICE}. The overlay is stored as a Secondary Capture and the map as a Segmentation.")
        notice.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setObjectName("dicom_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #ff7070;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(notice)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def accept(self) -> None:
        try:
            self.state.validate()
            if self.unusable and not self.state.force:
                raise ValueError("the capture is unusable: tick \"Export anyway\" to export it with that notice")
        except ValueError as exc:
            self.error_label.setText(str(exc))
            return
        super().accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the DICOM files", self.state.out_dir)
        if folder:
            self.out_edit.setText(folder)


def show_dicom_export(window) -> DicomExportDialog | None:
    """Open the dialog for ``window.result`` (non-blocking); the export starts when it is accepted."""
    if window.result is None or window.opened is None:
        window.sink.note("Classify a capture before exporting", level="warning")
        return None
    quality = getattr(window.result, "quality", None)
    node = window.pacs.node(quiet=True)
    dialog = DicomExportDialog(DicomExportState(out_dir=window.last_folder(), send=node is not None), window,
                               unusable=quality is not None and not quality.usable,
                               pacs_label=None if node is None else node.label)
    dialog.accepted.connect(lambda: window.pacs.export(dialog.state))
    dialog.open()
    return dialog
