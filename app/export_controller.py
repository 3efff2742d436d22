"""Exports from the main window: overlay PNG, label PNG and NPZ of the map on screen.

The overlay export draws what the surgeon sees: the palette, opacity and hidden
classes come from the window's :class:`app.overlay_state.OverlayState`, never
from the view's widgets. Writing is done by :mod:`core.output.export` (the one export module of CLI and GUI).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from core.audit.events import record
from core.labels.maps import write_label_png
from core.output.export import overlay_image, write_npz, write_overlay_png
from core.output.legend import flag_layers, legend_rows


class ExportController:
    """Exports of ``window.result`` (an ``app.main_window.MainWindow``)."""

    def __init__(self, window) -> None:
        self.window = window

    def _require_result(self):
        if self.window.result is None or self.window.opened is None:
            raise ValueError("nothing to export: classify a capture first")
        return self.window.result

    def _overlay_arguments(self) -> dict:
        """What the overlay export draws: the state's palette, opacity and hidden classes."""
        result = self._require_result()
        state = self.window.overlay_state
        return dict(
            rgb=self.window.opened.rgb,
            labels=result.labels,
            model=result.model,
            source=result.source,
            palette=state.palette,
            opacity=state.opacity / 100.0,
            hidden=state.hidden,
            classified_at=result.classified_at,
            capture_id=self.window.opened.capture.capture_id,
            flags=flag_layers(result),  # not measured, out of distribution, uncertain: hatched, as on screen
            quality=getattr(result, "quality", None),  # an unusable capture shown anyway is watermarked
        )

    def legend_rows(self) -> list:
        """The rows the overlay export lists (the screen's legend reads the same model)."""
        args = self._overlay_arguments()
        model = args["model"]
        return legend_rows(args["labels"], model.class_ids, model.class_names, flags=args["flags"],
                           hidden=args["hidden"], palette=args["palette"])

    def overlay_image(self):
        """The overlay PNG content as a PIL image (what :meth:`write_overlay` writes)."""
        return overlay_image(**self._overlay_arguments())

    def write_overlay(self, path) -> Path:
        return write_overlay_png(path, **self._overlay_arguments())

    def write_labels(self, path) -> Path:
        return write_label_png(path, self._require_result().labels)

    def write_npz(self, path) -> Path:
        return write_npz(path, self._require_result(), capture_id=self.window.opened.capture.capture_id)

    def _dialog(self, title: str, suffix: str, filter_text: str, write) -> None:
        window = self.window
        if window.result is None:
            window.sink.note("Classify a capture before exporting", level="warning")
            return
        default = str(Path(window.last_folder() or ".") / f"{window.opened.capture.capture_id}{suffix}")
        path, _ = QFileDialog.getSaveFileName(window, title, default, filter_text)
        if not path:
            return
        try:
            write(path)
        except (OSError, ValueError) as exc:
            window.sink.report(exc, context="export")
            return
        record("exported", format=Path(path).suffix.lstrip(".") or "file", capture=window.opened.capture.capture_id,
               files=[str(path)], model_sha256=window.result.model.sha256)
        window.sink.note(f"Wrote {path}")

    def overlay_dialog(self) -> None:
        self._dialog("Export overlay", "_overlay.png", "PNG (*.png)", self.write_overlay)

    def labels_dialog(self) -> None:
        self._dialog("Export label map", "_labels.png", "PNG (*.png)", self.write_labels)

    def npz_dialog(self) -> None:
        self._dialog("Export labels and probabilities", "_classification.npz", "NumPy (*.npz)", self.write_npz)
