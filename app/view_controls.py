"""Toolbar controls of the overlay (opacity, palette, view mode), bound to an OverlayState.

Thin widgets (glue style): each one shows a field of
:class:`app.overlay_state.OverlayState` and writes it back when the user moves
it; nothing here holds a display option of its own. :func:`persist_overlay`
keeps the remembered options (palette, opacity) in the settings registry.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QToolBar

from app.overlay_state import OverlayState
from app.settings import AppSettings
from core.classes import PALETTES, class_table

PALETTE_TITLES = {"thesis": "Thesis colours", "colourblind": "Colour-blind safe"}


class ViewControls:
    """Opacity slider, palette combo and view-mode combo on ``toolbar``, bound to ``state``."""

    def __init__(self, toolbar: QToolBar, state: OverlayState) -> None:
        self.state = state
        # The view mode first: on a 1280-px-wide screen the toolbar's overflow menu swallows its
        # last widgets, and the view mode (what the colours mean) must stay in sight.
        toolbar.addSeparator()
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName("view_mode_combo")
        self.mode_combo.setToolTip("Class map, confidence (max probability) or one class's probability (V cycles)")
        self.mode_combo.addItem("Class map", ("classes", None))
        self.mode_combo.addItem("Confidence", ("confidence", None))
        for tissue in class_table().classes:
            self.mode_combo.addItem(f"P({tissue.name})", ("probability", tissue.id))
        self.mode_combo.currentIndexChanged.connect(lambda i: state.set_view_mode(*self.mode_combo.itemData(i)))
        state.on_change("view_mode", self._show_mode)
        state.on_change("probability_class", self._show_mode)
        toolbar.addWidget(self.mode_combo)
        toolbar.addWidget(QLabel(" Opacity "))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setObjectName("opacity_slider")
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setFixedWidth(120)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.setValue(state.opacity)
        self.opacity_slider.valueChanged.connect(lambda v: setattr(state, "opacity", v))
        state.on_change("opacity", self.opacity_slider.setValue)
        toolbar.addWidget(self.opacity_slider)

        self.palette_combo = QComboBox()
        self.palette_combo.setObjectName("palette_combo")
        self.palette_combo.setToolTip("Class colours")
        for name in PALETTES:
            self.palette_combo.addItem(PALETTE_TITLES.get(name, name), name)
        self._show_palette(state.palette)
        self.palette_combo.currentIndexChanged.connect(
            lambda i: setattr(state, "palette", self.palette_combo.itemData(i)))
        state.on_change("palette", self._show_palette)
        toolbar.addWidget(self.palette_combo)


    def _show_palette(self, palette: str) -> None:
        self.palette_combo.setCurrentIndex(max(self.palette_combo.findData(palette), 0))

    def _show_mode(self, _value=None) -> None:
        mode = self.state.view_mode
        wanted = (mode, self.state.probability_class if mode == "probability" else None)
        for i in range(self.mode_combo.count()):
            if self.mode_combo.itemData(i) == wanted:
                self.mode_combo.setCurrentIndex(i)
                return

    def cycle_mode(self) -> tuple[str, int | None]:
        """Switch to the next view mode in combo order (wrapping); returns it."""
        index = (self.mode_combo.currentIndex() + 1) % self.mode_combo.count()
        self.mode_combo.setCurrentIndex(index)
        return tuple(self.mode_combo.itemData(index))


def bind_checkable(action: QAction, state: OverlayState, name: str) -> None:
    """Keep a checkable action's check mark equal to boolean field ``name`` (the action's slot sets it)."""
    action.setChecked(bool(getattr(state, name)))
    state.on_change(name, lambda on: action.setChecked(bool(on)))


def persist_overlay(state: OverlayState, settings: AppSettings) -> None:
    """Start from the remembered palette and opacity and remember every change."""
    palette = settings.get("palette")
    state.palette = palette if palette in PALETTES else "thesis"
    state.opacity = settings.get("opacity")
    state.on_change("palette", lambda p: settings.set("palette", p))
    state.on_change("opacity", lambda v: settings.set("opacity", v))
