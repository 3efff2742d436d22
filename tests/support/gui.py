"""Helpers for the GUI tests: synthetic captures on disk, small models, waiting on the window, grabbing pixels.

Captures come from ``core.capture.synthetic.captures`` written as NEMESIS-named TIFF triplets;
models are small random-weight Conv2DNets saved with ``core.model.files``.
The fixtures built on these live in ``tests/app/conftest.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.capture.files import load_capture, write_frame
from core.model.network import Conv2DNet
from core.model.files import save_model
from core.spectral.chain import preprocess_capture

CLASS_IDS = (1, 2, 3, 4, 5)
CLASS_NAMES = ("Healthy tissue", "Tumour", "Venous blood", "Arterial blood", "Dura mater")


def write_capture(folder: Path, synthetic, *, name: str | None = None) -> Path:
    """Write raw/dark/white as ``IDxxxxCyy.tif`` / ``CD`` / ``CW``; return the raw path."""
    capture_id = name or synthetic.capture_id
    base, n = capture_id.split("C")
    folder.mkdir(parents=True, exist_ok=True)
    write_frame(folder / f"{base}CD{n}.tif", synthetic.dark, synthetic.metadata)
    write_frame(folder / f"{base}CW{n}.tif", synthetic.white, synthetic.metadata)
    return write_frame(folder / f"{capture_id}.tif", synthetic.raw, synthetic.metadata)


def write_model(path: Path, raw_path: Path, *, seed: int = 0) -> Path:
    """A random-weight model whose profile id fits the capture at ``raw_path``."""
    profile_id = preprocess_capture(load_capture(raw_path)).profile_id
    torch.manual_seed(seed)
    save_model(path, Conv2DNet(25, 5), name="gui-test", class_ids=CLASS_IDS, class_names=CLASS_NAMES,
               profile_id=profile_id, version="3", created="2024-01-01T00:00:00Z")
    return path


def open_and_wait(qtbot, window, raw, *refs, timeout=20_000):
    with qtbot.waitSignal(window.capture_opened, timeout=timeout):
        window.open_capture(raw, *refs)
    return window.opened


def classify_and_wait(qtbot, window, timeout=60_000):
    with qtbot.waitSignal(window.classified, timeout=timeout) as blocker:
        window.classify()
    return blocker.args[0]


def fail_and_wait(qtbot, window, action, timeout=20_000):
    """Run ``action()`` and wait for the job to fail; returns the exception."""
    with qtbot.waitSignal(window.job_failed, timeout=timeout) as blocker:
        action()
    return blocker.args[0]


def grab_array(widget) -> np.ndarray:
    """The widget as rendered: ``uint8 (H, W, 4)``."""
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGBA8888)
    ptr = image.constBits()
    return np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()].copy()
