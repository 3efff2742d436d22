"""Legend: class colours, per-class percentage of the frame, visibility toggles and flag layers.

Bound to an :class:`app.overlay_state.OverlayState`: the swatches follow its
palette, the checkboxes show and edit its hidden classes. The shares come from
:func:`core.output.legend.legend_rows`, the model every export uses: flag layers
("not measured", "out of distribution", "uncertain") have their own rows, and a
pixel counts once, so the screen and the files never disagree.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QWidget

from app.overlay_state import OverlayState
from core.classes import class_table
from core.output.legend import FLAG_MEANINGS, FLAG_ORDER, FLAG_STYLES, flag_layers, legend_rows


class LegendPanel(QWidget):
    """One row per class: visibility checkbox with the class name, colour swatch, % of frame."""

    rows_changed = Signal(object)  # the legend rows now on screen (list), or None without a map

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
        # Flag layers: a row each, shown when the map on screen has that layer.
        self.flag_rows: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        for row, key in enumerate(FLAG_ORDER, start=len(self.table.classes)):
            name, fill, hatch, _pattern = FLAG_STYLES[key]
            swatch, text, percent = QLabel(), QLabel(name), QLabel("—")
            swatch.setFixedSize(22, 22)
            colour = fill if fill is not None else hatch
            swatch.setStyleSheet(
                f"background-color: rgb{tuple(colour)}; border: 2px dashed rgb{tuple(hatch)};")
            text.setToolTip(FLAG_MEANINGS[key])
            text.setObjectName(f"legend_flag_{key}")
            percent.setObjectName(f"legend_percent_{key}")
            percent.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for column, widget in enumerate((swatch, text, percent)):
                layout.addWidget(widget, row, column)
                # Hidden rows keep their space: the panel does not grow under the surgeon's eyes
                # when a map with flags arrives (nor re-lay the window out: the first map's paint).
                policy = widget.sizePolicy()
                policy.setRetainSizeWhenHidden(True)
                widget.setSizePolicy(policy)
                widget.ensurePolished()  # its style sheet counted in the space kept, before it is first shown
                widget.hide()
            self.flag_rows[key] = (swatch, text, percent)
        self.rows: list = []  # the core.output.legend.LegendRow list on screen
        self._result = None
        self._shown: tuple | None = None  # (labels, flags) on screen, to recompute when classes are hidden
        layout.setRowStretch(len(self.table.classes) + len(FLAG_ORDER), 1)
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
            check.setText(self.table.by_id(class_id).name + (" (hidden)" if class_id in hidden else ""))
        if self._shown is not None:
            self.set_labels(*self._shown)  # rows carry "hidden"

    def set_labels(self, labels: np.ndarray | None, flags=()) -> None:
        """Update the percentages from a class map ``uint8 (H, W)`` and its flag layers (None clears them)."""
        self._shown = None if labels is None else (labels, tuple(flags))
        if labels is None:
            self.rows = []
            self.rows_changed.emit(None)
            for label in self.percent_labels.values():
                label.setText("—")
            for widgets in self.flag_rows.values():
                for widget in widgets:
                    widget.hide()
            return
        ids = [t.id for t in self.table.classes]
        names = [t.name for t in self.table.classes]
        self.rows = legend_rows(labels, ids, names, flags=flags, hidden=self.state.hidden, palette=self.state.palette)
        shown = set()
        for row in self.rows:
            if row.key in self.percent_labels:
                self.percent_labels[row.key].setText(f"{100.0 * row.fraction:.1f} %")
            elif row.key in self.flag_rows:
                shown.add(row.key)
                self.flag_rows[row.key][2].setText(f"{100.0 * row.fraction:.1f} %")
        for key, widgets in self.flag_rows.items():
            for widget in widgets:
                widget.setVisible(key in shown)
        self.rows_changed.emit(self.rows)

    def set_result(self, result) -> None:
        """The legend of a classification result: class shares and its flag layers (None clears)."""
        self._result = result
        if result is None:
            self.set_labels(None)
        else:
            self.set_labels(result.labels, flag_layers(result))

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        """Tick or untick a class, as a click on its checkbox does."""
        self.checks[class_id].setChecked(visible)
