"""The dataset part of the retraining dialog: folder chooser, one row per capture, class warnings.

A view of :class:`app.retraining.state.RetrainingState`: it shows ``state.rows`` and
writes roles into the state; scanning the folder (which reads every label PNG) is
the dialog's job, off the GUI thread.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.retraining.state import RetrainingState
from core.classes import CLASS_IDS, class_table

ROLES = ("train", "test", "skip")
ROLE_TITLES = {"train": "Train", "test": "Held-out test", "skip": "Skip"}
MIN_VISIBLE_ROWS = 8  # captures visible without scrolling at the dialog's default size


class DatasetTable(QtWidgets.QWidget):
    """Folder line + "Choose dataset…", the capture table (role per capture) and the class warnings.

    ``folderChosen(path)``: the user picked a folder; ``rolesChanged()``: a role changed.
    """

    folderChosen = QtCore.Signal(Path)
    rolesChanged = QtCore.Signal()

    def __init__(self, state: RetrainingState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        self.dataset_edit = QtWidgets.QLineEdit(self)
        self.dataset_edit.setReadOnly(True)
        self.dataset_edit.setPlaceholderText("dataset folder: <capture_id>/{raw,dark,white}.tif, labels.png")
        self.browse_button = QtWidgets.QPushButton("Choose dataset…", self)
        self.browse_button.clicked.connect(self._choose)
        row.addWidget(self.dataset_edit, 1)
        row.addWidget(self.browse_button)
        layout.addLayout(row)

        names = class_table()
        self.table = QtWidgets.QTableWidget(0, 3 + len(CLASS_IDS) + 1, self)
        self.table.setHorizontalHeaderLabels(
            ["Capture", "Patient", "Use as"] + [names.by_id(c).name for c in CLASS_IDS] + ["Note"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(self.rows_height(MIN_VISIBLE_ROWS))
        layout.addWidget(self.table, 1)
        self.warnings_label = QtWidgets.QLabel(self)
        self.warnings_label.setObjectName("class_warnings")
        self.warnings_label.setStyleSheet("color: #e0a020")
        self.warnings_label.setWordWrap(True)
        layout.addWidget(self.warnings_label)

    def rows_height(self, rows: int) -> int:
        """Pixels the table needs to show ``rows`` rows, header and frame included."""
        header = self.table.horizontalHeader().sizeHint().height()
        scrollbar = self.table.horizontalScrollBar().sizeHint().height()
        return header + rows * self.table.verticalHeader().defaultSectionSize() + 2 * self.table.frameWidth() + scrollbar

    def visible_rows(self) -> int:
        """Whole rows the table shows now (for the >= 8 rows check)."""
        return self.table.viewport().height() // self.table.verticalHeader().defaultSectionSize()

    def _choose(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Dataset folder", self.dataset_edit.text())
        if folder:
            self.folderChosen.emit(Path(folder))

    def refresh(self) -> None:
        """Rebuild the rows from ``state.rows``."""
        rows = self.state.rows
        self.dataset_edit.setText("" if self.state.dataset is None else str(self.state.dataset))
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
        self.show_warnings()

    def set_role(self, capture_id: str, role: str) -> None:
        """Set a capture's role in the state and in its combo box; emits ``rolesChanged``."""
        self.state.set_role(capture_id, role)
        for i, row in enumerate(self.state.rows):
            if row.capture_id == capture_id:
                combo = self.table.cellWidget(i, 2)
                if combo is not None and combo.currentIndex() != ROLES.index(role):
                    combo.blockSignals(True)
                    combo.setCurrentIndex(ROLES.index(role))
                    combo.blockSignals(False)
        self.show_warnings()
        self.rolesChanged.emit()

    def show_warnings(self) -> None:
        self.warnings_label.setText("\n".join(self.state.class_warnings()) if self.state.rows else "")

    def set_editable(self, editable: bool) -> None:
        self.table.setEnabled(editable)
        self.browse_button.setEnabled(editable)
