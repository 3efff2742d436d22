"""Capture metadata side panel: file, camera, exposure, gain, time, cube size."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from core.capture.camera_profiles import describe_calibration

FIELDS = (
    ("capture", "Capture"),
    ("file", "File"),
    ("camera", "Camera"),
    ("exposure", "Exposure"),
    ("gain", "Gain"),
    ("time", "Acquired"),
    ("frame", "Frame"),
    ("cube", "Cube"),
    ("valid", "Measured pixels"),
    ("calibration", "Calibration"),
)


class MetadataPanel(QWidget):
    """Read-only form; ``values`` holds what is shown (tests read it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        self.labels: dict[str, QLabel] = {}
        for key, title in FIELDS:
            label = QLabel("—")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setObjectName(f"metadata_{key}")
            label.setWordWrap(True)
            self.labels[key] = label
            layout.addRow(title, label)
        self.values: dict[str, str] = {}

    def show_capture(self, opened) -> None:
        """Fill from an :class:`app.workers.OpenedCapture`."""
        capture, cube = opened.capture, opened.cube
        meta = capture.metadata
        camera = "—"
        if meta is not None and meta.camera_model:
            camera = meta.camera_model + (f" (s/n {meta.serial})" if meta.serial else "")
        h, w, b = cube.data.shape
        self.values = {
            "capture": capture.capture_id,
            "file": capture.raw_path.name if capture.raw_path else "—",
            "camera": camera,
            "exposure": "—" if meta is None or meta.exposure_us is None else f"{meta.exposure_us / 1000:.2f} ms",
            "gain": "—" if meta is None or meta.gain_db is None else f"{meta.gain_db:.1f} dB",
            "time": "—" if meta is None or not meta.acquisition_time else meta.acquisition_time,
            "frame": f"{capture.raw.shape[1]} x {capture.raw.shape[0]} px, {capture.raw.dtype}",
            "cube": f"{w} x {h} px, {b} bands ({cube.profile_id})",
            "valid": _measured(opened),
            "calibration": describe_calibration(cube, None if meta is None else meta.serial),
        }
        for key, value in self.values.items():
            self.labels[key].setText(value)
        if capture.raw_path:
            self.labels["file"].setToolTip(str(capture.raw_path))

    def clear(self) -> None:
        self.values = {}
        for label in self.labels.values():
            label.setText("—")


def _measured(opened) -> str:
    """Share of pixels that will be classified: valid, not clipped in any band, tissue-like."""
    masked = getattr(opened, "not_measured", None)
    if masked is None:
        return f"{100.0 * opened.cube.valid.mean():.1f} %"
    share = 100.0 * float(masked.mean())
    return f"{100.0 - share:.1f} %" + (f" ({share:.1f} % not measured: clipped or no tissue)" if share else "")
