"""Settings ▸ Cloud: fields saved under the CLI's names, env overrides shown, secrets to the keyring, Test buttons."""
from __future__ import annotations

import pytest

from app.application import create_application
from app.retraining.cloud_page import CloudPage
from tests.support.azurite import DEV_KEY, started_azurite


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    yield from started_azurite(tmp_path_factory.mktemp("azurite-cloudpage"))


@pytest.fixture
def page(qtbot, monkeypatch):
    for var in ("NEUROHSI_CONTAINER", "NEUROHSI_STORAGE_AUTH", "NEUROHSI_STORAGE_ACCOUNT_URL",
                "NEUROHSI_STORAGE_CONNECTION_STRING", "NEUROHSI_AZUREML_WORKSPACE"):
        monkeypatch.delenv(var, raising=False)
    create_application([])
    store: dict = {}

    def make():
        widget = CloudPage(lambda: dict(store), store.update)
        qtbot.addWidget(widget)
        return widget

    return make, store


def test_account_key_sign_in_is_stored_in_the_keyring_and_tested_against_azurite(qtbot, page, azurite,
                                                                                  memory_keyring):
    make, store = page
    widget = make()
    widget.auth_combo.setCurrentIndex(widget.auth_combo.findData("account-key"))
    widget.edits["storage_account_url"].setText(azurite.account_url)
    widget.edits["container"].setText("cloudpage")
    widget.save()
    assert store["storage_auth"] == "account-key" and store["storage_account_url"] == azurite.account_url
    # no key yet: the test says what is missing, in one line
    widget.test("storage")
    qtbot.waitUntil(lambda: not widget.busy, timeout=20_000)
    assert widget.storage_result.text().startswith("✗ ") and "no account key in the keyring" in \
        widget.storage_result.text()
    widget.secret_edit.setText(DEV_KEY)
    widget.secret_button.click()
    assert widget.secret_edit.text() == ""  # the secret leaves the widget at once
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert memory_keyring.store[("neurohsi", "storage-account-key")] == DEV_KEY
    assert DEV_KEY not in str(store)  # never in the settings
    widget.test("storage")
    qtbot.waitUntil(lambda: not widget.busy, timeout=20_000)
    assert widget.storage_result.text().startswith("✓ Storage works: container 'cloudpage'"), \
        widget.storage_result.text()
    widget.test("azureml")
    qtbot.waitUntil(lambda: not widget.busy, timeout=20_000)
    assert widget.azureml_result.text().startswith("✗ Azure ML: workspace not configured: subscription ID")


def test_environment_variables_win_and_are_shown(qtbot, page, monkeypatch):
    make, store = page
    store.update(container="saved-container", workspace="saved-ws")
    monkeypatch.setenv("NEUROHSI_CONTAINER", "env-container")
    widget = make()
    edit = widget.edits["container"]
    assert edit.text() == "env-container" and not edit.isEnabled() and "NEUROHSI_CONTAINER" in edit.toolTip()
    assert widget.edits["workspace"].text() == "saved-ws" and widget.edits["workspace"].isEnabled()
    assert widget.config().container == "env-container"
    widget.edits["workspace"].setText("ws2")
    widget.save()
    assert store["workspace"] == "ws2" and store["container"] == "saved-container"  # env value not saved over


def test_settings_dialog_opens_the_cloud_page_saving_into_the_registry(qtbot, tmp_path, monkeypatch):
    from app.settings import AppSettings
    from app.settings_dialog import SettingsDialog, SettingsState

    monkeypatch.delenv("NEUROHSI_AZUREML_WORKSPACE", raising=False)
    create_application([])
    settings = AppSettings.from_file(tmp_path / "s.ini")
    dialog = SettingsDialog(SettingsState(), app_settings=settings)
    qtbot.addWidget(dialog)
    assert not dialog.cloud_button.isHidden()
    cloud = dialog.open_cloud()
    qtbot.addWidget(cloud)
    cloud.page.edits["workspace"].setText("neurohsi-ws")
    cloud.page.edits["environment"].setText("neurohsi-train:3")
    cloud.page.save()
    assert settings.get("cloud_workspace") == "neurohsi-ws"
    assert settings.qsettings.value("cloud/environment") == "neurohsi-train:3"  # the key the docs name
    from app.retraining.cloud_page import load_cloud_settings
    from remote.cloud_config import resolve

    assert resolve(load_cloud_settings(settings), {}).workspace == "neurohsi-ws"
    assert SettingsDialog(SettingsState()).cloud_button.isHidden()  # no registry given: no Cloud page
