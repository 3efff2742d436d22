"""Shared fixtures for the GUI tests (imported by the test_gui_* modules; holds no tests).

Captures come from ``core.synthetic`` written as NEMESIS-named TIFF triplets;
models are small random-weight Conv2DNets saved with ``core.model_file``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.capture_io import load_capture, write_frame
from core.model import Conv2DNet
from core.model_file import save_model
from core.preprocessing import preprocess_capture
from core.synthetic import generate_capture, small_profile

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


@pytest.fixture(scope="session")
def small_files(tmp_path_factory):
    """(raw path, model path) of a 40 x 60 synthetic capture and a model for it."""
    folder = tmp_path_factory.mktemp("small")
    raw = write_capture(folder, generate_capture(seed=3, profile=small_profile(40, 60)))
    return raw, write_model(folder / "model.safetensors", raw)


@pytest.fixture(scope="session")
def second_small_raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small2")
    return write_capture(folder, generate_capture(seed=4, profile=small_profile(40, 60)), name="ID0007C02")


@pytest.fixture(scope="session")
def full_files(tmp_path_factory):
    """(raw path, model path) of a full-resolution (1088 x 2048) synthetic capture."""
    folder = tmp_path_factory.mktemp("full")
    raw = write_capture(folder, generate_capture(seed=1))
    return raw, write_model(folder / "model.safetensors", raw)


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Factory: a shown MainWindow with settings in ``tmp_path`` (never the user's)."""
    from app.application import create_application
    from app.main_window import MainWindow
    from app.settings import AppSettings

    create_application()

    def make(model_path=None, *, settings_file: Path | None = None, show_dialogs: bool = False):
        settings = AppSettings.from_file(settings_file or tmp_path / "settings.ini")
        window = MainWindow(settings, model_path=model_path)
        window.sink.show_dialogs = show_dialogs
        qtbot.addWidget(window)
        window.show()
        return window

    return make


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
