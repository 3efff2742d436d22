"""The labelling tool's side panel (classes with live counts, sizes, display, author) and class badge.

Both are plain widgets: the labelling widget connects their signals to the
session and the canvas (no logic here beyond building and showing).
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling import canvas as cv
from core.classes import CLASS_IDS, class_table

SWATCH_PX = 28  # the badge's colour square: readable at a glance from the operating table


def swatch(class_id: int, palette: str, size: int = 14) -> QtGui.QPixmap:
    """A ``size`` px square of the class colour with a dark border (pale colours stay visible)."""
    pixmap = QtGui.QPixmap(size, size)
    pixmap.fill(QtGui.QColor(*class_table().colour(class_id, palette)))
    painter = QtGui.QPainter(pixmap)
    painter.setPen(QtGui.QPen(QtGui.QColor(0, 0, 0), 2))
    painter.drawRect(1, 1, size - 2, size - 2)
    painter.end()
    return pixmap


class ActiveClassBadge(QtWidgets.QWidget):
    """Tool-bar badge: a large swatch of the active class with its number and name."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("active_class_badge")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        self.swatch = QtWidgets.QLabel(self)
        self.name = QtWidgets.QLabel(self)
        font = self.name.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.name.setFont(font)
        layout.addWidget(self.swatch)
        layout.addWidget(self.name)
        self.setToolTip("Active class (keys 1-5; 0 erases)")

    def show_class(self, class_id: int, palette: str, *, erasing: bool = False) -> None:
        self.swatch.setPixmap(swatch(class_id, palette, SWATCH_PX))
        name = f"{class_id}  {class_table().by_id(class_id).name}"
        self.name.setText(f"{name}  (eraser)" if erasing else name)


class LabellingPanel(QtWidgets.QWidget):
    """Classes (keys 1-5) with live pixel counts, brush and eraser sizes, display and author fields."""

    classChosen = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(270)
        self.palette_name = "thesis"
        form = QtWidgets.QVBoxLayout(self)
        box = QtWidgets.QGroupBox("Class (keys 1-5)", self)
        classes = QtWidgets.QVBoxLayout(box)
        self.class_buttons: dict[int, QtWidgets.QRadioButton] = {}
        group = QtWidgets.QButtonGroup(self)
        for class_id in CLASS_IDS:
            button = QtWidgets.QRadioButton(box)
            button.setObjectName(f"class_button_{class_id}")
            button.toggled.connect(lambda on, c=class_id: on and self.classChosen.emit(c))
            group.addButton(button)
            classes.addWidget(button)
            self.class_buttons[class_id] = button
        form.addWidget(box)

        sizes = QtWidgets.QFormLayout()
        self.brush_spin = QtWidgets.QSpinBox(self)
        self.eraser_spin = QtWidgets.QSpinBox(self)
        for spin in (self.brush_spin, self.eraser_spin):
            spin.setRange(1, 500)
            spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush diameter ([ and ], or Alt+drag)")
        self.eraser_spin.setToolTip("Eraser diameter ([ and ] with the eraser, or Alt+drag)")
        sizes.addRow("Brush", self.brush_spin)
        sizes.addRow("Eraser", self.eraser_spin)
        self.preserve_check = QtWidgets.QCheckBox("Preserve other labels", self)
        self.preserve_check.setToolTip("Paint only unlabelled pixels (or pixels of the active class)")
        sizes.addRow(self.preserve_check)
        self.display_combo = QtWidgets.QComboBox(self)
        self.display_combo.addItems([cv.FILLED, cv.OUTLINE])
        sizes.addRow("Show", self.display_combo)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(60)
        self.opacity_slider.setToolTip("Label opacity (keys , and .)")
        sizes.addRow("Opacity", self.opacity_slider)
        self.threshold_spin = QtWidgets.QDoubleSpinBox(self)
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(0.8)
        self.threshold_spin.setToolTip("Start from prediction copies only pixels at least this confident")
        sizes.addRow("Confidence ≥", self.threshold_spin)
        self.author_edit = QtWidgets.QLineEdit(self)
        self.author_edit.setPlaceholderText("your name, as recorded in meta.json")
        self.author_edit.setToolTip("Display name recorded as who drew the labels (kept in Settings)")
        sizes.addRow("Author", self.author_edit)
        form.addLayout(sizes)
        self.status_label = QtWidgets.QLabel(self)
        self.status_label.setWordWrap(True)
        form.addWidget(self.status_label)
        form.addStretch(1)
        self.set_palette("thesis")

    def set_palette(self, palette: str) -> None:
        self.palette_name = palette
        for class_id, button in self.class_buttons.items():
            button.setIcon(QtGui.QIcon(swatch(class_id, palette)))

    def show_counts(self, counts: dict[int, int]) -> None:
        table = class_table()
        for class_id, button in self.class_buttons.items():
            button.setText(f"{class_id}  {table.by_id(class_id).name}  {counts[class_id]:,} px")

    def show_sizes(self, brush: int, eraser: int) -> None:
        for spin, value in ((self.brush_spin, brush), (self.eraser_spin, eraser)):
            if spin.value() != value:
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
