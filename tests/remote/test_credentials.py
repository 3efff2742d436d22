"""Credentials: keyring under service 'neurohsi', precedence of connection settings, redaction."""
from __future__ import annotations

import logging

import pytest

from remote import credentials
from remote.credentials import (
    SERVICE,
    STORAGE_CONNECTION_STRING,
    STORAGE_ENV_VAR,
    CredentialError,
    delete_secret,
    get_secret,
    install_log_redaction,
    redact,
    resolve_storage_connection_string,
    set_secret,
)


def test_secret_round_trip_under_the_neurohsi_service(memory_keyring):
    set_secret("scoring-endpoint-key", "k3y-value-123")
    assert memory_keyring.store[(SERVICE, "scoring-endpoint-key")] == "k3y-value-123"
    assert get_secret("scoring-endpoint-key") == "k3y-value-123"
    assert delete_secret("scoring-endpoint-key") is True
    assert get_secret("scoring-endpoint-key") is None
    assert delete_secret("scoring-endpoint-key") is False


@pytest.mark.parametrize("name", ["", "  ", None])
def test_bad_secret_names_are_refused(name):
    with pytest.raises(CredentialError, match="secret name"):
        get_secret(name)


def test_empty_secret_value_is_refused():
    with pytest.raises(CredentialError, match="non-empty"):
        set_secret("azureml-client-secret", "")


def test_storage_connection_string_precedence(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    assert resolve_storage_connection_string() is None
    set_secret(STORAGE_CONNECTION_STRING, "from-keyring-xyz")
    assert resolve_storage_connection_string() == "from-keyring-xyz"
    monkeypatch.setenv(STORAGE_ENV_VAR, "from-env-abcdef")
    assert resolve_storage_connection_string() == "from-env-abcdef"
    assert resolve_storage_connection_string("explicit-value") == "explicit-value"


def test_redact_blanks_remembered_secrets_and_key_fields():
    set_secret("azureml-client-secret", "sp-secret-0123456789")
    text = redact("auth failed for sp-secret-0123456789 with AccountKey=abc+/def==;BlobEndpoint=x ?sv=1&sig=SIGVALUE&se=2")
    assert "sp-secret-0123456789" not in text
    assert "abc+/def==" not in text and "SIGVALUE" not in text
    assert "AccountKey=***" in text and "sig=***" in text and "BlobEndpoint=x" in text


def test_log_filter_keeps_secrets_out_of_logs(caplog):
    secret = "endpoint-key-" + "9" * 20
    set_secret("scoring-endpoint-key", secret)
    logger = logging.getLogger("neurohsi.test.redaction")
    flt = install_log_redaction(logger)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("calling endpoint with key %s", secret)
            logger.warning("connection DefaultEndpointsProtocol=http;AccountKey=%s;", "QUJDREVGRw==")
    finally:
        logger.removeFilter(flt)
    assert secret not in caplog.text and "QUJDREVGRw==" not in caplog.text
    assert caplog.text.count("***") == 2


def test_connection_string_parts_are_remembered():
    credentials.remember_secret("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S3cretKeyValue==;")
    assert "S3cretKeyValue==" not in redact("key was S3cretKeyValue== here")


def test_no_os_keyring_reads_as_empty_and_refuses_to_store():
    import keyring
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())  # the memory_keyring fixture restores the previous one
    assert get_secret(STORAGE_CONNECTION_STRING) is None
    with pytest.raises(CredentialError, match="no OS keyring"):
        set_secret(STORAGE_CONNECTION_STRING, "value-123456")
