"""Wrong credentials, missing container, unreachable or unconfigured storage: one clear line, no secret."""
from __future__ import annotations

import base64
import logging
import time

import pytest

from remote.blob_storage import BlobStorage, StorageError
from remote.credentials import STORAGE_CONNECTION_STRING, STORAGE_ENV_VAR, set_secret
from tests.support.azurite import DEV_ACCOUNT, connection_string, free_port

WRONG_KEY = base64.b64encode(b"definitely-not-the-azurite-key-0123456789abcdef").decode()


def assert_clean(message: str, caplog, secret: str) -> None:
    assert "\n" not in message
    assert secret not in message
    assert secret not in caplog.text


def test_wrong_account_key_is_one_clear_line_without_the_key(azurite, container_name, caplog):
    caplog.set_level(logging.DEBUG)  # azure.core logs every request at DEBUG/INFO
    storage = BlobStorage(connection_string(azurite.port, key=WRONG_KEY), container=container_name)
    with pytest.raises(StorageError) as err:
        storage.check()
    message = str(err.value)
    assert "refused the credentials" in message and f"127.0.0.1:{azurite.port}" in message
    assert_clean(message, caplog, WRONG_KEY)


def test_missing_container_is_reported_when_not_creating(azurite, container_name):
    storage = BlobStorage(azurite.connection_string, container=container_name)
    with pytest.raises(StorageError, match=f"container '{container_name}' does not exist"):
        storage.check(create=False)
    storage.check()  # creates it
    storage.check(create=False)


def test_listing_a_missing_container_says_so(azurite, container_name):
    storage = BlobStorage(azurite.connection_string, container=container_name)
    with pytest.raises(StorageError, match="does not exist"):
        storage.list_datasets()


def test_unreachable_storage_fails_fast_with_one_line(caplog):
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there
    storage = BlobStorage(connection_string(port, key=WRONG_KEY), retries=0, timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(StorageError, match="unreachable") as err:
        storage.check()
    assert time.monotonic() - t0 < 30  # retries=0: not the SDK's default minutes of retrying
    assert f"http://127.0.0.1:{port}/{DEV_ACCOUNT}" in str(err.value)
    assert_clean(str(err.value), caplog, WRONG_KEY)


def test_no_configuration_names_every_place_to_configure(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    with pytest.raises(StorageError, match="NEUROHSI_STORAGE_CONNECTION_STRING.*keyring"):
        BlobStorage()


def test_connection_string_from_env_then_keyring(azurite, container_name, monkeypatch):
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    set_secret(STORAGE_CONNECTION_STRING, azurite.connection_string)
    BlobStorage(container=container_name).check()
    monkeypatch.setenv(STORAGE_ENV_VAR, connection_string(azurite.port, key=WRONG_KEY))
    with pytest.raises(StorageError, match="refused"):  # env wins over the keyring
        BlobStorage(container=container_name).check()


def test_malformed_connection_string_does_not_echo_it():
    bad = "AccountName=x;AccountKey=SuperSecretValue123;NoEndpoint"
    with pytest.raises(StorageError) as err:
        BlobStorage(bad).check()
    assert "SuperSecretValue123" not in str(err.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"container": "Bad_Name"}, "invalid container"), ({"block_size": 10}, "block_size"),
     ({"max_concurrency": 0}, "max_concurrency")],
)
def test_bad_options_are_refused(azurite, kwargs, match):
    with pytest.raises(StorageError, match=match):
        BlobStorage(azurite.connection_string, **kwargs)
