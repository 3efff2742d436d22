"""Inspect panel: the hovered pixel's spectrum against wavelength, pinned spectra, ROI mean.

The readout line gives pixel coordinates, class and class probabilities. Hover
updates arrive already throttled (``pg.SignalProxy`` in :mod:`app.image_view`);
each one only re-sets a 25-point curve and a label.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.classes import UNLABELLED, class_table
from core.spectral.chain import Cube


class SpectrumPanel(QWidget):
    """Spectrum plot with a hover curve, pinned curves (own colours) and the ROI mean."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cube: Cube | None = None
        self.labels: np.ndarray | None = None
        self.probabilities: np.ndarray | None = None
        self.class_ids: tuple[int, ...] = ()
        self.x = np.zeros(0)  # plotted x, ascending
        self.order = np.zeros(0, dtype=np.intp)  # band index of each plotted point

        self.readout = QLabel("Open a capture, then hover over the image")
        self.readout.setObjectName("spectrum_readout")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.PlainText)
        self.plot = pg.PlotWidget(background="#101214")
        self.plot.setLabel("bottom", "Wavelength", units="nm")
        self.plot.setLabel("left", "Normalised reflectance")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(180)
        self.hover_curve = self.plot.plot(pen=pg.mkPen("#ffffff", width=2), name="hover")
        self.roi_curve = self.plot.plot(pen=pg.mkPen("#00e5ff", width=2, style=Qt.PenStyle.DashLine), name="roi")
        self.pinned_curves: list[pg.PlotDataItem] = []
        self.roi_readout = QLabel("")
        self.roi_readout.setObjectName("roi_readout")
        self.clear_button = QPushButton("Clear pins")
        self.clear_button.setToolTip("Remove the pinned spectra and their markers")

        layout = QVBoxLayout(self)
        layout.addWidget(self.readout)
        layout.addWidget(self.plot, 1)
        row = QHBoxLayout()
        row.addWidget(self.roi_readout, 1)
        row.addWidget(self.clear_button)
        layout.addLayout(row)

    def set_cube(self, cube: Cube | None) -> None:
        """A new capture: axis from its wavelengths (band index when unknown); curves cleared."""
        self.cube = cube
        self.set_result(None, None, ())
        if cube is not None and cube.wavelengths_nm is not None:
            # Band wavelengths need not rise with the band index (mosaic order): plot in wavelength order.
            wavelengths = np.asarray(cube.wavelengths_nm, dtype=np.float64)
            self.order = np.argsort(wavelengths, kind="stable")
            self.x = wavelengths[self.order]
            self.plot.setLabel("bottom", "Wavelength", units="nm")
        else:
            self.x = np.arange(0 if cube is None else cube.data.shape[-1], dtype=np.float64)
            self.order = np.arange(self.x.size, dtype=np.intp)
            self.plot.setLabel("bottom", "Band")
        self.hover_curve.setData([], [])
        self.roi_curve.setData([], [])
        if self.x.size > 1:  # the capture's bands before any spectrum is drawn, not a 0..1 "nm" axis
            self.plot.setXRange(float(self.x[0]), float(self.x[-1]), padding=0.02)
        self.roi_readout.setText("")
        # The readout described a pixel of the previous capture: never leave it under a new one.
        self.readout.setText("Open a capture, then hover over the image" if cube is None
                             else "Hover over the image for a pixel's spectrum")
        self.clear_pins()

    def set_result(self, labels, probabilities, class_ids) -> None:
        self.labels, self.probabilities, self.class_ids = labels, probabilities, tuple(class_ids)

    def describe(self, row: int, col: int) -> str:
        """One-line readout for a pixel: coordinates, class, probabilities."""
        text = f"Row {row}, col {col}"
        if self.cube is not None and not self.cube.valid[row, col]:
            return text + " — invalid pixel (no reflectance)"
        if self.labels is None:
            return text
        table = class_table()
        class_id = int(self.labels[row, col])
        if class_id == UNLABELLED:
            return text + " — not measured (clipped raw or no tissue): not classified"
        name = table.by_id(class_id).name
        probs = self.probabilities[row, col]
        parts = [f"{_short_name(c)} {100.0 * p:.0f}%" for c, p in zip(self.class_ids, probs)]
        return f"{text} — {name} ({100.0 * float(probs.max()):.0f}%) · " + ", ".join(parts)

    def show_pixel(self, row: int, col: int) -> None:
        if self.cube is None:
            return
        self.hover_curve.setData(self.x, self.cube.data[row, col][self.order])
        self.readout.setText(self.describe(row, col))

    def clear_hover(self) -> None:
        self.hover_curve.setData([], [])

    def show_pins(self, pins) -> None:
        """One curve per :class:`app.overlay_state.Pin`, in its colour (bound to ``OverlayState.pins``)."""
        self.clear_pins()
        if self.cube is None:
            return
        for pin in pins:
            curve = self.plot.plot(self.x, self.cube.data[pin.row, pin.col][self.order], pen=pg.mkPen(pin.colour, width=2),
                                   name=f"pin {pin.row},{pin.col}")
            self.pinned_curves.append(curve)

    def clear_pins(self) -> None:
        for curve in self.pinned_curves:
            self.plot.removeItem(curve)
        self.pinned_curves.clear()

    def show_roi(self, bounds: tuple[int, int, int, int] | None) -> None:
        """Mean spectrum of the valid pixels in ``(row0, row1, col0, col1)`` and their count."""
        if self.cube is None or bounds is None:
            self.roi_curve.setData([], [])
            self.roi_readout.setText("")
            return
        r0, r1, c0, c1 = bounds
        block = self.cube.data[r0:r1, c0:c1]
        valid = self.cube.valid[r0:r1, c0:c1]
        n = int(valid.sum())
        if n == 0:
            self.roi_curve.setData([], [])
            self.roi_readout.setText(f"ROI {r1 - r0}x{c1 - c0}: no valid pixels")
            return
        self.roi_curve.setData(self.x, block[valid].mean(axis=0)[self.order])
        self.roi_readout.setText(f"ROI rows {r0}-{r1 - 1}, cols {c0}-{c1 - 1}: {n} pixels (mean dashed)")


def _short_name(class_id: int) -> str:
    return class_table().by_id(class_id).key.replace("_blood", "").replace("_mater", "")
