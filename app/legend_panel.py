"""Legend: class colours, per-class percentage of the frame and visibility toggles.

Bound to an :class:`app.overlay_state.OverlayState`: the swatches follow its
palette, the checkboxes show and edit its hidden classes.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QWidget

from app.overlay import class_fractions
from app.overlay_state import OverlayState
from core.classes import class_table


class LegendPanel(QWidget):
    """One row per class: visibility checkbox with the class name, colour swatch, % of frame."""

    def __init__(self, parent: QWidget | None = None, *, state: OverlayState | None = None) -> None:
        super().__init__(parent)
        self.table = class_table()
        self.state = state if state is not None else OverlayState()
        layout = QGridLayout(self)
        layout.setColumnStretch(1, 1)
        self.swatches: dict[int, QLabel] = {}
        self.checks: dict[int, QCheckBox] = {}
        self.percent_labels: dict[int, QLabel] = {}
        for row, tissue in enumerate(self.table.classes):
            swatch = QLabel()
            swatch.setFixedSize(22, 22)
            check = QCheckBox(tissue.name)
            check.setChecked(tissue.id not in self.state.hidden)
            check.setObjectName(f"legend_visible_{tissue.key}")
            check.setToolTip(f"Show or hide {tissue.name.lower()} in the overlay")
            check.toggled.connect(lambda on, c=tissue.id: self.state.set_class_visible(c, on))
            percent = QLabel("—")
            percent.setMinimumWidth(64)
            percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            percent.setObjectName(f"legend_percent_{tissue.key}")
            layout.addWidget(swatch, row, 0)
            layout.addWidget(check, row, 1)
            layout.addWidget(percent, row, 2)
            self.swatches[tissue.id], self.checks[tissue.id], self.percent_labels[tissue.id] = swatch, check, percent
        layout.setRowStretch(len(self.table.classes), 1)
        self.state.on_change("palette", self._show_palette)
        self.state.on_change("hidden", self._show_hidden)
        self._show_palette(self.state.palette)

    def _show_palette(self, palette: str) -> None:
        for class_id, swatch in self.swatches.items():
            r, g, b = self.table.colour(class_id, palette)
            swatch.setStyleSheet(f"background-color: rgb({r},{g},{b}); border: 1px solid #808080;")

    def _show_hidden(self, hidden) -> None:
        for class_id, check in self.checks.items():
            check.setChecked(class_id not in hidden)

    def set_labels(self, labels: np.ndarray | None) -> None:
        """Update the percentages from a class map ``uint8 (H, W)`` (None clears them)."""
        if labels is None:
            for label in self.percent_labels.values():
                label.setText("—")
            return
        for class_id, fraction in class_fractions(labels, self.percent_labels).items():
            self.percent_labels[class_id].setText(f"{100.0 * fraction:.1f} %")

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        """Tick or untick a class, as a click on its checkbox does."""
        self.checks[class_id].setChecked(visible)
