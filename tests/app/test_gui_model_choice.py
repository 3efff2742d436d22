"""The window chooses its model by core.model.choice and says, in its words, how to fix a missing one."""
from __future__ import annotations

from pathlib import Path

import resources
from core.model.choice import HOW_TO_FIX, MSG_DEMO_MISSING, MSG_INSTALLED_MISSING
from core.model.installed import ModelStore
from tests.support.gui import classify_and_wait, fail_and_wait, open_and_wait


def test_installed_model_missing_fails_the_classify_job_with_the_fix(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window()
    installed = ModelStore().install(model, name="doomed")
    window.model_watch.check()
    assert window.model_path() == Path(installed.path)
    Path(installed.path).unlink()  # deleted by hand: never a silent fall-back to the demo model
    assert window.model_path() is None
    open_and_wait(qtbot, window, raw)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert exc.problem == MSG_INSTALLED_MISSING and "doomed" in str(exc)
    assert HOW_TO_FIX in window.sink.last.text

    again = ModelStore().install(model)  # fixed by installing again: the next classify uses it
    assert window.model_path() == Path(again.path)
    assert classify_and_wait(qtbot, window).model.name == "gui-test"


def test_gui_start_up_warns_in_the_model_choice_words(qtbot, make_window, small_files, tmp_path, monkeypatch):
    from app.cli.gui_commands import _warn_without_model

    _raw, model = small_files
    monkeypatch.setattr(resources, "DEMO_MODEL_PATH", tmp_path / "demo.safetensors")
    window = make_window()
    _warn_without_model(window, None, window.settings)
    assert window.sink.last.level == "warning" and MSG_DEMO_MISSING in window.sink.last.text
    before = len(window.sink.history)
    _warn_without_model(window, model, window.settings)  # a model that exists: nothing to say
    assert len(window.sink.history) == before


def test_a_model_installed_elsewhere_flags_the_map_on_screen_until_the_next_map(qtbot, make_window, small_files,
                                                                                 tmp_path):
    from tests.support.gui import write_model

    raw, model = small_files
    window = make_window()
    ModelStore().install(model, name="first")
    window.model_watch.check()
    qtbot.waitUntil(lambda: window.model_loader.state == "ready", timeout=30_000)
    open_and_wait(qtbot, window, raw)
    before = classify_and_wait(qtbot, window)
    assert "model" not in window.warnings.warnings

    other = write_model(tmp_path / "other.safetensors", raw, seed=5)  # other weights: another sha256
    ModelStore().install(other, name="second")  # as `neurohsi model install` in a terminal does
    assert window.model_watch.check()
    qtbot.waitUntil(lambda: "model" in window.warnings.warnings, timeout=30_000)
    text = window.warnings.warnings["model"]
    assert f"made by {before.model.name} v{before.model.version}" in text and "Classify again" in text
    assert window.result is before  # the map on screen still names the model that made it

    after = classify_and_wait(qtbot, window)
    assert after.model.sha256 != before.model.sha256
    assert "model" not in window.warnings.warnings  # the new map is the new model's


def test_a_window_destroyed_while_its_model_warms_up_raises_nothing_later(qtbot, small_files, tmp_path, monkeypatch):
    """The full-size warm-up can outlive a window that was destroyed without being closed."""
    import threading

    import shiboken6
    from PySide6.QtCore import QThreadPool

    import core.model.inference as inference
    from app.application import create_application
    from app.main_window import MainWindow
    from app.settings import AppSettings

    create_application()
    warming, release = threading.Event(), threading.Event()
    real_warm_up = inference.warm_up

    def held_warm_up(*args, **kwargs):
        warming.set()
        assert release.wait(30)
        return real_warm_up(*args, **kwargs)

    monkeypatch.setattr(inference, "warm_up", held_warm_up)
    _raw, model = small_files
    window = MainWindow(AppSettings.from_file(tmp_path / "settings.ini"), model_path=model)
    window.sink.show_dialogs = False
    window.show()
    qtbot.waitUntil(warming.is_set, timeout=30_000)
    loader = window.model_loader
    with qtbot.captureExceptions() as exceptions:
        shiboken6.delete(window)  # gone, its loader with it, no closeEvent (no shutdown)
        assert not shiboken6.isValid(loader)
        release.set()
        assert QThreadPool.globalInstance().waitForDone(30_000)
        qtbot.wait(200)  # the job's "returned" is delivered on this thread
    assert exceptions == []
