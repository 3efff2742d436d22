"""What the window shows before a capture is open: how to start, and whether a model is ready."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget


class EmptyState(QWidget):
    """A large "Open capture" button, the drag-and-drop hint and the model's state."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("empty_state")
        self.open_button = QPushButton("Open capture…")
        self.open_button.setObjectName("empty_open_button")
        self.open_button.setStyleSheet("QPushButton { font-size: 22px; padding: 14px 28px; }")
        self.hint = QLabel("or drop the raw TIFF (with its dark and white references) here\n"
                           "References are found by name: IDxxxxCyy.tif, IDxxxxCDyy.tif, IDxxxxCWyy.tif")
        self.hint.setObjectName("empty_hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setStyleSheet("color: #b8bec6; font-size: 15px;")
        self.model_text = QLabel("")
        self.model_text.setObjectName("empty_model")
        self.model_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.model_text.setWordWrap(True)
        self.model_text.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(12)
        layout.addWidget(self.hint)
        layout.addSpacing(24)
        layout.addWidget(self.model_text)
        layout.addStretch(3)

    def set_model_text(self, text: str, *, problem: bool = False) -> None:
        self.model_text.setText(text)
        colour = "#ffb000" if problem else "#8fd18f"
        self.model_text.setStyleSheet(f"color: {colour}; font-size: 15px;")
