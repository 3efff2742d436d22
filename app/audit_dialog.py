"""Help ▸ Audit log: the newest entries of the local audit log, "Verify" and "Export…".

Reads :mod:`core.audit` only; nothing here writes the log.
"""
from __future__ import annotations

import json

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.audit.events import default_log

SHOWN = 500  # newest entries in the table; export and verify cover the whole log
_COLUMNS = ("#", "When (UTC)", "OS user", "Operator", "Event", "Details")


class AuditLogDialog(QDialog):
    def __init__(self, parent: QWidget | None = None, *, log=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit log")
        self.setObjectName("audit_log_dialog")
        self.log = log if log is not None else default_log()
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setObjectName("audit_table")
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setObjectName("audit_verify")
        self.verify_button.clicked.connect(self.verify)
        self.export_button = QPushButton("Export…")
        self.export_button.setObjectName("audit_export")
        self.export_button.clicked.connect(self.export_dialog)
        self.result_label = QLabel(f"Log: {self.log.path}")
        self.result_label.setObjectName("audit_result")
        self.result_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.verify_button)
        row.addWidget(self.export_button)
        row.addWidget(self.result_label, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(900, 480)
        self.reload()

    def reload(self) -> None:
        entries = self.log.entries()[-SHOWN:][::-1]  # newest first
        self.table.setRowCount(len(entries))
        for r, e in enumerate(entries):
            cells = (str(e.seq), e.at, e.os_user, e.operator, e.event, json.dumps(e.details, ensure_ascii=False))
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))

    def verify(self) -> list[str]:
        problems = self.log.verify()
        if problems:
            self.result_label.setText("NOT intact: " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))
            self.result_label.setStyleSheet("color: #ff7070;")
        else:
            self.result_label.setText(f"Intact: {len(self.log.entries())} entries, the chain ends at its head.")
            self.result_label.setStyleSheet("")
        return problems

    def export_to(self, path) -> None:
        try:
            written = self.log.export(path)
        except (OSError, ValueError) as exc:
            from core.errors import one_line

            self.result_label.setText(f"Export failed: {one_line(exc)}")
            return
        from core.audit.events import record

        record("exported", format="audit-log", files=[str(written)])
        self.result_label.setText(f"Exported to {written}")

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the audit log", "neurohsi-audit.csv",
                                              "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export_to(path)


def show_audit_log(window) -> AuditLogDialog:
    dialog = AuditLogDialog(window)
    dialog.open()
    return dialog
