"""Fixtures of the app tier: synthetic captures with models, and a MainWindow factory (settings in tmp_path)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.gui import write_capture, write_model


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


@pytest.fixture(autouse=True)
def base_font_after_test():
    """Theatre mode sets the application-wide font; one test's theatre mode must not size the next test's dialogs."""
    yield
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        from app.application import BASE_POINT_SIZE, set_font_size

        set_font_size(app, BASE_POINT_SIZE)
