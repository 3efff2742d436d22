"""Legend: class colours, per-class percentage of the frame and visibility toggles."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QWidget

from app.overlay import class_fractions
from core.classes import class_table


class LegendPanel(QWidget):
    """One row per class: visibility checkbox with the class name, colour swatch, % of frame."""

    visibility_changed = Signal(object)  # set of hidden class ids

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = class_table()
        layout = QGridLayout(self)
        layout.setColumnStretch(1, 1)
        self.swatches: dict[int, QLabel] = {}
        self.checks: dict[int, QCheckBox] = {}
        self.percent_labels: dict[int, QLabel] = {}
        for row, tissue in enumerate(self.table.classes):
            swatch = QLabel()
            swatch.setFixedSize(22, 22)
            check = QCheckBox(tissue.name)
            check.setChecked(True)
            check.setObjectName(f"legend_visible_{tissue.key}")
            check.setToolTip(f"Show or hide {tissue.name.lower()} in the overlay")
            check.toggled.connect(self._emit_visibility)
            percent = QLabel("—")
            percent.setMinimumWidth(64)
            percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            percent.setObjectName(f"legend_percent_{tissue.key}")
            layout.addWidget(swatch, row, 0)
            layout.addWidget(check, row, 1)
            layout.addWidget(percent, row, 2)
            self.swatches[tissue.id], self.checks[tissue.id], self.percent_labels[tissue.id] = swatch, check, percent
        layout.setRowStretch(len(self.table.classes), 1)
        self.set_palette("thesis")

    def set_palette(self, palette: str) -> None:
        for class_id, swatch in self.swatches.items():
            r, g, b = self.table.colour(class_id, palette)
            swatch.setStyleSheet(f"background-color: rgb({r},{g},{b}); border: 1px solid #808080;")

    def set_labels(self, labels: np.ndarray | None) -> None:
        """Update the percentages from a class map ``uint8 (H, W)`` (None clears them)."""
        if labels is None:
            for label in self.percent_labels.values():
                label.setText("—")
            return
        for class_id, fraction in class_fractions(labels, self.percent_labels).items():
            self.percent_labels[class_id].setText(f"{100.0 * fraction:.1f} %")

    def hidden_classes(self) -> set[int]:
        return {class_id for class_id, check in self.checks.items() if not check.isChecked()}

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        self.checks[class_id].setChecked(visible)

    def _emit_visibility(self, _checked: bool) -> None:
        self.visibility_changed.emit(self.hidden_classes())
