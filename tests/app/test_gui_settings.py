"""Settings registry, dialog state, keyring-only key, window state, drag and drop, `neurohsi gui`."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from app.application import BASE_POINT_SIZE, THEATRE_POINT_SIZE
from app.settings import MAX_RECENT_FILES, SETTINGS, AppSettings
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


def test_recent_files_newest_first_without_repeats_and_capped(tmp_path):
    settings = AppSettings.from_file(tmp_path / "s.ini")
    paths = [tmp_path / f"ID{i:04d}C01.tif" for i in range(MAX_RECENT_FILES + 2)]
    for path in paths:
        settings.add_recent_file(path)
    settings.add_recent_file(paths[3])  # opened again: moves to the top, not listed twice
    files = settings.get("recent_files")
    assert len(files) == MAX_RECENT_FILES and len(set(files)) == MAX_RECENT_FILES
    assert files[:3] == [str(paths[3].resolve()), str(paths[-1].resolve()), str(paths[-2].resolve())]
    assert str(paths[0].resolve()) not in files  # the oldest fell off


def test_remote_needs_both_the_switch_and_an_endpoint(tmp_path):
    settings = AppSettings.from_file(tmp_path / "s.ini")
    assert not settings.remote_enabled()  # no endpoint
    settings.set("endpoint_url", "https://x.example/score")
    assert settings.remote_enabled()
    settings.set("use_remote", False)
    assert not settings.remote_enabled()
    settings.set("use_remote", True)
    settings.set("endpoint_url", "   ")
    assert not settings.remote_enabled()


def test_a_hand_edited_value_falls_back_to_the_default(tmp_path):
    path = tmp_path / "s.ini"
    path.write_text("[display]\nopacity=half\n[files]\nrecent_files=not json\n")
    settings = AppSettings.from_file(path)
    assert settings.get("opacity") == AppSettings.setting("opacity").default
    assert settings.get("recent_files") == []


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
    app = QApplication.instance()
    assert app.font().pointSize() == BASE_POINT_SIZE and window.toolbar.iconSize().width() == 24
    window.actions["theatre"].setChecked(True)
    assert window.isFullScreen() and window.docks["Legend"].isHidden() and window.toolbar.isHidden()
    # Each part of theatre mode on its own: larger type everywhere and larger controls.
    assert app.font().pointSize() == THEATRE_POINT_SIZE
    assert window.toolbar.iconSize().width() == 40
    window.close()

    assert window.settings.get("window_geometry") and window.settings.get("window_state_version") == 1

    again = make_window(model)
    assert again.actions["theatre"].isChecked() and again.isFullScreen()  # remembered
    assert app.font().pointSize() == THEATRE_POINT_SIZE
    again.actions["theatre"].setChecked(False)
    assert app.font().pointSize() == BASE_POINT_SIZE and again.toolbar.iconSize().width() == 24
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

    from remote.credentials import SCORING_ENDPOINT_KEY, delete_secret, keyring_available

    assert keyring_available()  # the test's in-memory keyring
    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        assert not keyring_available()
        assert delete_secret(SCORING_ENDPOINT_KEY) is False  # was: "cannot delete ... NoKeyringError"
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


def test_entra_sign_in_for_the_endpoint_is_a_setting_that_gives_token_auth(qtbot, make_window, small_files,
                                                                          monkeypatch):
    from types import SimpleNamespace

    raw, model = small_files
    window = make_window(model)
    state = SettingsState.from_settings(window.settings)
    state.endpoint_url, state.endpoint_auth = "https://neuro.example.org/score", "entra"
    dialog = SettingsDialog(state)
    assert dialog.entra_check.isChecked()
    dialog.entra_check.setChecked(False)
    assert dialog.state.endpoint_auth == "key"
    dialog.entra_check.setChecked(True)
    window.apply_settings_state(dialog.state)
    assert SettingsState.from_settings(window.settings).endpoint_auth == "entra"
    # No Entra ID here: a stand-in credential (nothing signs in while the target is built).
    credential = SimpleNamespace(get_token=lambda *scopes, **kw: SimpleNamespace(token="t" * 20, expires_on=4e9))
    monkeypatch.setattr("remote.cloud_config.scoring_credential", lambda config: credential)
    target = window.remote_target()
    assert target.key is None and target.token_auth.credential is credential
    assert window.remote_target().token_auth is target.token_auth  # one token holder: refreshed, not refetched
    with pytest.raises(ValueError, match="'key' or 'entra'"):
        SettingsState(endpoint_auth="password").validate()
