"""The trust checks on screen: quality warnings, "Show anyway" for an unusable capture with a
persistent watermark naming why, and the flag layers (not measured, out of distribution,
uncertain) hatched over the map with legend rows.

Bound to the main window's ``capture_opened`` and ``classified`` signals; the map itself is
drawn by :class:`app.image_view.ImageView`, the flag layers by :mod:`core.output.legend`
(the same as in exports). Warnings go through ``window.show_warning(kind, text)``, which
binds them to the capture on screen.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QPushButton

from core.output.legend import FLAG_ORDER, flag_layers, flag_rgba
from core.output.trust_render import UNUSABLE_WATERMARK
from core.capture.quality import OOD_WARNING_FRACTION
from core.spectral.ood import UNAVAILABLE

WATERMARK_PX = {False: 20, True: 34}  # normal, theatre (read from two metres)


class _Placer(QObject):
    """Keeps the watermark centred across the map's viewport as it resizes."""

    def __init__(self, view) -> None:
        super().__init__(view)
        self.place = lambda: None

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Resize:
            self.place()
        return False


class TrustView:
    """Shows ``result.quality`` and the flag layers of the window's results."""

    def __init__(self, window) -> None:
        self.window = window
        self.result = None
        self.forced = False
        self.large = False
        view = window.image_view
        self.flag_items: dict[str, pg.ImageItem] = {}
        for z, key in enumerate(reversed(FLAG_ORDER)):
            item = pg.ImageItem()
            item.setZValue(15 + z)  # above the class map (10), below pins (20); not measured on top
            view.view.addItem(item)
            self.flag_items[key] = item
        self.ood_item = self.flag_items["ood"]
        # The watermark is a child of the viewport, centred across the map: never under the
        # theatre model line (top left) nor the legend (bottom left), and no banner hides it.
        self.watermark = QLabel(UNUSABLE_WATERMARK, view.viewport())
        self.watermark.setObjectName("unusable_watermark")
        self.watermark.setWordWrap(True)
        self.watermark.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.watermark.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._style_watermark()
        self.watermark.hide()
        self._placer = _Placer(view.viewport())
        self._placer.place = self._place_watermark
        view.viewport().installEventFilter(self._placer)
        self.show_anyway = QPushButton("Show anyway", window.map_area)
        self.show_anyway.setObjectName("show_anyway")
        self.show_anyway.setToolTip("Show the map of this unusable capture, watermarked")
        self.show_anyway.clicked.connect(self.force_show)
        window.map_area.layout().insertWidget(2, self.show_anyway)  # under the warning banner
        self.show_anyway.hide()
        self.legend_entry = QLabel("")  # the out-of-distribution check's note when a model cannot check
        self.legend_entry.setObjectName("legend_ood")
        self.legend_entry.setWordWrap(True)
        window.legend.layout().addWidget(self.legend_entry, window.legend.layout().rowCount(), 0, 1, 3)
        self.legend_entry.hide()
        window.legend.rows_changed.connect(window.map_area.theatre.set_rows)  # one legend model, both legends
        window.capture_opened.connect(lambda _opened: self.reset())
        window.classified.connect(self.show_result)

    def set_large(self, large: bool) -> None:
        """Theatre mode: the watermark in type read from two metres."""
        self.large = bool(large)
        self._style_watermark()
        self._place_watermark()

    def _style_watermark(self) -> None:
        self.watermark.setStyleSheet(
            "QLabel { background: rgba(200, 0, 0, 215); color: white; font-weight: bold;"
            f" font-size: {WATERMARK_PX[self.large]}px; padding: 10px; border: 3px solid white; }}"
        )

    def _place_watermark(self) -> None:
        viewport = self.window.image_view.viewport()
        width = max(200, int(viewport.width() * 0.7))
        self.watermark.setFixedWidth(width)
        self.watermark.ensurePolished()  # the style sheet's font, for measuring
        inner = width - 2 * (10 + 3)  # padding and border of the style sheet
        flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)
        text = QFontMetrics(self.watermark.font()).boundingRect(QRect(0, 0, inner, 10_000), flags, self.watermark.text())
        self.watermark.setFixedHeight(text.height() + 2 * (10 + 3) + 4)  # wrapped text, no empty band
        # Upper middle: below the theatre model line, clear of the large legend at the bottom left.
        top = max(90, int(0.12 * (viewport.height() - self.watermark.height())))
        self.watermark.move((viewport.width() - width) // 2, top)
        self.watermark.raise_()

    def reset(self) -> None:
        self.result, self.forced = None, False
        for item in self.flag_items.values():
            item.clear()
        self.watermark.hide()
        self.show_anyway.hide()
        self.legend_entry.hide()
        self.window.map_area.theatre.set_ood_unavailable(False)

    def show_result(self, result) -> None:
        self.reset()
        self.result = result
        quality = getattr(result, "quality", None)
        self._show_flags(result)
        if quality is None or quality.status == "ok":
            return
        # The out-of-distribution share has its own banner line (from _show_flags).
        problems = [c.message for c in quality.problems if c.code != "out_of_distribution"]
        if problems:
            self.window.show_warning("quality", "; ".join(problems))
        if quality.status == "unusable":
            # No map by default: the class map goes; the reason stays with a way to see it anyway.
            self.window.image_view.clear_result()
            self.window.legend.set_result(None)
            for item in self.flag_items.values():
                item.clear()
            self.show_anyway.show()

    def withheld(self, result, capture_id: str, *, say: bool = True) -> bool:
        """When ``result``'s map is withheld (unusable, not forced): say so in the status bar, the
        theatre line and (``say``) the notices, and return True; else False."""
        quality = getattr(result, "quality", None)
        if quality is None or quality.usable or self.forced:
            return False
        window = self.window
        window.status.show_withheld(quality.reason)
        window.map_area.theatre.set_model_line(f"{capture_id}: unusable capture, no map")
        if say:
            window.sink.note(f"{capture_id}: unusable capture, no map shown ({quality.reason})", level="warning")
        return True

    def force_show(self) -> None:
        """Show the unusable capture's map, watermarked with why until another capture is opened."""
        result = self.result
        if result is None:
            return
        self.forced = True
        valid = result.cube.valid if result.cube is not None else None
        self.window.image_view.set_result(result.labels, result.probabilities, result.model.class_ids, valid)
        self.window.legend.set_result(result)
        self._show_flags(result)
        self.show_anyway.hide()
        reason = result.quality.reason if result.quality is not None else ""
        self.watermark.setText(f"{UNUSABLE_WATERMARK}\n{reason}")
        self.window.status.show_withheld(reason, shown=True)
        self.window.map_area.theatre.set_model_line(
            f"UNUSABLE, shown anyway · {result.model.name} v{result.model.version}")
        self.watermark.show()
        self._place_watermark()

    def _show_flags(self, result) -> None:
        layers = flag_layers(result)
        for layer in layers:
            self.flag_items[layer.key].setImage(flag_rgba([layer]), autoLevels=False, levels=(0, 255))
        if getattr(result, "ood_mask", None) is None:
            self.legend_entry.setText(UNAVAILABLE)
            self.legend_entry.setStyleSheet("QLabel { color: #888888; }")
            self.legend_entry.show()
            self.window.map_area.theatre.set_ood_unavailable(True)
        fraction = getattr(result, "ood_fraction", None)
        if fraction is not None and fraction > OOD_WARNING_FRACTION:
            self.window.show_warning(
                "ood", f"{100.0 * fraction:.0f} % of the pixels are unlike anything this model learnt from (grey hatched)"
            )
