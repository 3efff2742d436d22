"""Settings ▸ Model installs into the store every classify reads (no Qt setting of its own)."""
from __future__ import annotations

from app.application import create_application
from app.settings import AppSettings
from app.settings_dialog import SettingsDialog, SettingsState
from core.model.installed import ModelStore


def test_install_a_model_file_from_settings(qtbot, small_files, tmp_path):
    _raw, model = small_files
    create_application([])
    settings = AppSettings.from_file(tmp_path / "settings.ini")
    dialog = SettingsDialog(SettingsState.from_settings(settings), app_settings=settings)
    qtbot.addWidget(dialog)
    assert dialog.model_label.text().startswith("the bundled demo model")
    dialog.install_model_file(str(model))
    qtbot.waitUntil(lambda: dialog.model_label.text().startswith("gui-test v3 (installed by"), timeout=20_000)
    assert ModelStore().current().via == "gui" and ModelStore().current().sha256
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    dialog.install_model_file(str(bad))
    qtbot.waitUntil(lambda: dialog.error_label.text().startswith("Not installed:"), timeout=20_000)
    assert str(bad) in dialog.error_label.text() and dialog.model_label.text().startswith("gui-test v3")
    assert len(ModelStore().entries()) == 1
