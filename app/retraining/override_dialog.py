"""The typed reason to install a model the comparison does not recommend (worse on tumour).

A plain dialog rather than ``QInputDialog``: the verdict is long, and QInputDialog's
label does not wrap, so on a 1280 x 800 screen its OK button ended up off-screen.
OK stays disabled until the reason is long enough to tell a later reader why.
"""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.retraining.installing import MIN_REASON_CHARS


class OverrideDialog(QtWidgets.QDialog):
    def __init__(self, title: str, text: str, parent: QtWidgets.QWidget | None = None) -> None:
        from app.window_layout import fit_to_screen

        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("override_dialog")
        layout = QtWidgets.QVBoxLayout(self)
        label = QtWidgets.QLabel(text, self)
        label.setWordWrap(True)
        label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        layout.addWidget(label)
        hint = f"Reason (at least {MIN_REASON_CHARS} characters; kept in the history):"
        layout.addWidget(QtWidgets.QLabel(hint, self))
        self.reason_edit = QtWidgets.QLineEdit(self)
        self.reason_edit.setObjectName("override_reason")
        layout.addWidget(self.reason_edit)
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel, self)
        self.ok_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Install anyway")
        self.ok_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.reason_edit.textChanged.connect(
            lambda t: self.ok_button.setEnabled(len(" ".join(t.split())) >= MIN_REASON_CHARS))
        fit_to_screen(self, 720, 320)

    @property
    def reason(self) -> str:
        return self.reason_edit.text()


def ask_override_reason(parent: QtWidgets.QWidget, title: str, text: str) -> str | None:
    """The typed reason, or None when the user cancels."""
    dialog = OverrideDialog(title, text, parent)
    return dialog.reason if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted else None
