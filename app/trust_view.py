"""The trust checks on screen: quality warnings, "Show anyway" for an unusable capture with a
persistent watermark, and out-of-distribution pixels hatched grey with a legend entry.

Bound to the main window's ``capture_opened`` and ``classified`` signals; the map itself is
drawn by :class:`app.image_view.ImageView`, the hatch and watermark by :mod:`core.output.trust_render`
(the same as in exports). Warnings go through ``window.show_warning(kind, text)``.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QPushButton

from core.capture.quality import OOD_WARNING_FRACTION
from core.spectral.ood import UNAVAILABLE
from core.output.trust_render import OOD_LEGEND, UNUSABLE_WATERMARK, ood_hatch_rgba


class TrustView:
    """Shows ``result.quality`` / ``result.ood_mask`` of the window's results."""

    def __init__(self, window) -> None:
        self.window = window
        self.result = None
        self.forced = False
        view = window.image_view
        self.ood_item = pg.ImageItem()
        self.ood_item.setZValue(15)  # above the class map (10), below pins (20)
        view.view.addItem(self.ood_item)
        self.watermark = QLabel(UNUSABLE_WATERMARK, view.viewport())
        self.watermark.setObjectName("unusable_watermark")
        self.watermark.setStyleSheet(
            "QLabel { background: rgba(200, 0, 0, 190); color: white; font-weight: bold; font-size: 18px; padding: 6px; }"
        )
        self.watermark.move(12, 12)
        self.watermark.hide()
        self.show_anyway = QPushButton("Show anyway", window.map_area)
        self.show_anyway.setObjectName("show_anyway")
        self.show_anyway.setToolTip("Show the map of this unusable capture, watermarked")
        self.show_anyway.clicked.connect(self.force_show)
        window.map_area.layout().insertWidget(2, self.show_anyway)  # under the warning banner
        self.show_anyway.hide()
        self.legend_entry = QLabel("")
        self.legend_entry.setObjectName("legend_ood")
        self.legend_entry.setWordWrap(True)
        window.legend.layout().addWidget(self.legend_entry, window.legend.layout().rowCount(), 0, 1, 3)
        self.legend_entry.hide()
        window.capture_opened.connect(lambda _opened: self.reset())
        window.classified.connect(self.show_result)

    def reset(self) -> None:
        self.result, self.forced = None, False
        self.ood_item.clear()
        self.watermark.hide()
        self.show_anyway.hide()
        self.legend_entry.hide()

    def show_result(self, result) -> None:
        self.reset()
        self.result = result
        quality = getattr(result, "quality", None)
        self._show_ood(result)
        if quality is None or quality.status == "ok":
            return
        # The out-of-distribution share has its own banner line (from _show_ood).
        problems = [c.message for c in quality.problems if c.code != "out_of_distribution"]
        if problems:
            self.window.show_warning("quality", "; ".join(problems))
        if quality.status == "unusable":
            # No map by default: the class map goes; the reason stays with a way to see it anyway.
            self.window.image_view.clear_result()
            self.window.legend.set_labels(None)
            self.ood_item.clear()
            self.show_anyway.show()

    def force_show(self) -> None:
        """Show the unusable capture's map, watermarked until another capture is opened."""
        result = self.result
        if result is None:
            return
        self.forced = True
        valid = result.cube.valid if result.cube is not None else None
        self.window.image_view.set_result(result.labels, result.probabilities, result.model.class_ids, valid)
        self.window.legend.set_labels(result.labels)
        self._show_ood(result)
        self.show_anyway.hide()
        self.watermark.adjustSize()
        self.watermark.show()
        self.watermark.raise_()

    def _show_ood(self, result) -> None:
        mask = getattr(result, "ood_mask", None)
        fraction = getattr(result, "ood_fraction", None)
        if mask is None:
            self.legend_entry.setText(UNAVAILABLE)
            self.legend_entry.setStyleSheet("QLabel { color: #888888; }")
            self.legend_entry.show()
            return
        self.ood_item.setImage(ood_hatch_rgba(mask), autoLevels=False, levels=(0, 255))
        self.legend_entry.setText(f"▨ grey hatched: {OOD_LEGEND} — {100.0 * (fraction or 0.0):.1f} %")
        self.legend_entry.setStyleSheet("QLabel { color: #bbbbbb; }")
        self.legend_entry.show()
        if fraction is not None and fraction > OOD_WARNING_FRACTION:
            self.window.show_warning(
                "ood", f"{100.0 * fraction:.0f} % of the pixels are unlike anything this model learnt from (grey hatched)"
            )
