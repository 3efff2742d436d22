"""Help ▸ Keyboard shortcuts: every key of the main window, read from the actions table."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


def shortcut_rows() -> list[tuple[str, str]]:
    """``(keys, what they do)`` for every action with a shortcut, in table order."""
    from app.actions import ACTIONS

    rows = []
    for spec in ACTIONS:
        if spec.shortcuts:
            rows.append((" / ".join(spec.shortcuts), spec.text.replace("&", "").rstrip("…") + " — " + spec.tooltip))
    rows.append(("Space + drag, middle-drag", "Pan the image"))
    rows.append(("Mouse wheel", "Zoom the image"))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows()
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        for r, (keys, text) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(keys))
            self.table.setItem(r, 1, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(900, 620)
