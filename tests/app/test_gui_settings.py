"""Settings registry, dialog state, keyring-only key, window state, drag and drop, `neurohsi gui`."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.settings import SETTINGS, AppSettings
from app.settings_dialog import SettingsDialog, SettingsState
from tests.support.gui import open_and_wait

KEY = "very-secret-endpoint-key-42"


def test_registry_types_round_trip(tmp_path):
    settings = AppSettings.from_file(tmp_path / "s.ini")
    for s in SETTINGS:
        assert settings.get(s.name) == s.default and isinstance(settings.get(s.name), s.type)
    values = {"endpoint_url": "https://x.example/score", "use_remote": False, "opacity": 35,
              "recent_files": ["/a/b.tif"], "window_state": b"\x00\x01\xff"}
    for name, value in values.items():
        settings.set(name, value)
    settings.sync()
    again = AppSettings.from_file(tmp_path / "s.ini")
    for name, value in values.items():
        assert again.get(name) == value


def test_dialog_state_saves_key_to_keyring_only(qtbot, tmp_path, memory_keyring):
    path = tmp_path / "s.ini"
    settings = AppSettings.from_file(path)
    dialog = SettingsDialog(SettingsState.from_settings(settings))
    qtbot.addWidget(dialog)
    dialog.url_edit.setText("https://neuro.example.org/score")
    dialog.key_edit.setText(KEY)
    dialog.palette_combo.setCurrentIndex(dialog.palette_combo.findData("colourblind"))
    dialog.theatre_check.setChecked(True)
    assert dialog.state.endpoint_key == KEY and dialog.state.palette == "colourblind"
    dialog.state.save(settings)
    assert memory_keyring.store[("neurohsi", "scoring-endpoint-key")] == KEY
    text = path.read_text()
    assert KEY not in text and "neuro.example.org" in text
    restored = SettingsState.from_settings(AppSettings.from_file(path))
    assert restored == dialog.state

    bad = SettingsState(endpoint_url="http://remote.example.org/score")
    dialog.set_state(bad)
    dialog.accept()
    assert "https" in dialog.error_label.text() and dialog.result() == 0


def test_window_state_recent_files_and_remembered_theatre_mode(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    assert window.settings.get("recent_files")[0] == str(raw.resolve())
    assert [a.text() for a in window.recent_menu.actions()] == [raw.name]
    window.docks["Capture"].hide()
    window.actions["theatre"].setChecked(True)
    assert window.isFullScreen() and window.docks["Legend"].isHidden() and window.toolbar.isHidden()
    window.close()

    assert window.settings.get("window_geometry") and window.settings.get("window_state_version") == 1

    again = make_window(model)
    assert again.actions["theatre"].isChecked() and again.isFullScreen()  # remembered
    again.actions["theatre"].setChecked(False)
    # The normal layout comes back as it was saved: Capture hidden by the user, the rest shown.
    assert again.docks["Capture"].isHidden() and not again.docks["Legend"].isHidden()
    assert not again.toolbar.isHidden() and not again.isFullScreen()
    again.close()

    # A state saved by another layout version is ignored rather than half-applied.
    again.settings.set("window_state_version", 0)
    third = make_window(model)
    assert not third.docks["Capture"].isHidden()


def test_drop_a_tiff_opens_it(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(raw))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.capture_opened, timeout=20_000):
        window.dropEvent(event)
    assert window.opened.capture.raw_path == raw


def _cli(*args, tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "app.cli.main", "gui", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_screenshot_and_bad_capture(small_files, tmp_path):
    raw, model = small_files
    png = tmp_path / "shot.png"
    done = _cli(raw, "--model", model, "--classify", "--screenshot", png, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    shot = np.asarray(Image.open(png).convert("RGB"))
    assert shot.shape[0] > 500 and shot.shape[1] > 900 and shot.std() > 10

    missing = tmp_path / "ID0099C01.tif"
    failed = _cli(missing, "--screenshot", tmp_path / "x.png", tmp_path=tmp_path)
    assert failed.returncode == 2
    lines = [line for line in failed.stderr.splitlines() if line.startswith("neurohsi:")]
    assert lines == [f"neurohsi: error: {missing}: file not found"], failed.stderr
    assert "Traceback" not in failed.stderr


def test_without_a_keyring_ok_works_and_a_key_lives_for_the_session_only(qtbot, tmp_path):
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        path = tmp_path / "s.ini"
        settings = AppSettings.from_file(path)
        dialog = SettingsDialog(SettingsState.from_settings(settings))
        qtbot.addWidget(dialog)
        dialog.show()
        assert dialog.keyring_note.isVisible() and "cannot be stored" in dialog.keyring_note.text()
        assert dialog.session_key_check.isVisible() and dialog.session_key_check.isChecked()
        # OK with nothing touched: no keyring error (the key field was not edited).
        dialog.palette_combo.setCurrentIndex(dialog.palette_combo.findData("colourblind"))
        dialog.accept()
        assert dialog.result() == 1 and dialog.error_label.text() == ""
        dialog.state.save(settings)
        assert settings.get("palette") == "colourblind" and settings.endpoint_key() is None

        # A typed key is used for this session, and written nowhere.
        again = SettingsDialog(SettingsState.from_settings(settings))
        qtbot.addWidget(again)
        again.key_edit.setText(KEY)
        again.state.save(settings)
        assert settings.endpoint_key() == KEY and settings.key_is_session_only()
        settings.sync()
        assert KEY not in path.read_text()
        assert SettingsState.from_settings(settings).endpoint_key == KEY
        assert AppSettings.from_file(path).endpoint_key() is None  # a new session starts without it

        # Unticking "session only" without a keyring is refused on OK with a message, not an exception.
        third = SettingsDialog(SettingsState.from_settings(settings))
        qtbot.addWidget(third)
        third.session_key_check.setChecked(False)
        third.accept()
        assert third.result() == 0 and "session only" in third.error_label.text()
    finally:
        keyring.set_keyring(previous)
