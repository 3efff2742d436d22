"""Settings ▸ Cloud on a machine without a keyring: the storage secret is used for this session only."""
from __future__ import annotations

import pytest

from app.application import create_application
from app.retraining.cloud_page import CloudPage
from remote.credentials import STORAGE_ACCOUNT_KEY, get_secret, set_session_secret
from tests.support.azurite import DEV_KEY, started_azurite


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    yield from started_azurite(tmp_path_factory.mktemp("azurite-nokeyring"))


@pytest.fixture
def no_keyring(monkeypatch):
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    for var in ("NEUROHSI_CONTAINER", "NEUROHSI_STORAGE_AUTH", "NEUROHSI_STORAGE_ACCOUNT_URL",
                "NEUROHSI_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(var, raising=False)
    yield
    set_session_secret(STORAGE_ACCOUNT_KEY, None)
    keyring.set_keyring(previous)


def test_account_key_for_this_session_only_then_storage_works(qtbot, azurite, no_keyring, tmp_path):
    create_application([])
    saved: dict = {}
    page = CloudPage(lambda: dict(saved), saved.update)
    qtbot.addWidget(page)
    assert page.session_only and page.secret_button.text() == "Use for this session only"
    page.auth_combo.setCurrentIndex(page.auth_combo.findData("account-key"))
    page.edits["storage_account_url"].setText(azurite.account_url)
    page.edits["container"].setText("nokeyring")
    page.save()
    page.secret_edit.setText(DEV_KEY)
    page.secret_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    assert "for this session only" in page.storage_result.text()
    assert get_secret(STORAGE_ACCOUNT_KEY) == DEV_KEY and DEV_KEY not in str(saved)
    page.test("storage")
    qtbot.waitUntil(lambda: not page.busy, timeout=20_000)
    assert page.storage_result.text().startswith("✓ Storage works: container 'nokeyring'"), page.storage_result.text()
    set_session_secret(STORAGE_ACCOUNT_KEY, None)  # the session ends: nothing of it remains
    assert get_secret(STORAGE_ACCOUNT_KEY) is None
