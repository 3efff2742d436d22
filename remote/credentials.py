"""Secrets in the OS keyring (service name ``neurohsi``), and keeping them out of logs and errors.

Endpoint keys, storage connection strings and service-principal secrets are only ever
stored through :mod:`keyring`; settings files hold names, never values. Every secret
this module hands out is remembered so :func:`redact` (and :class:`RedactingFilter` on
log records) can blank it from any text that might reach a log, a dialog or stderr.
"""
from __future__ import annotations

import logging
import os

from core.errors import NeuroHSIError
from core.redaction import REDACTED, redact, remember_secret  # noqa: F401  (re-exported)

SERVICE = "neurohsi"

# Well-known secret names (the keyring "username" under the neurohsi service).
SCORING_ENDPOINT_KEY = "scoring-endpoint-key"
STORAGE_CONNECTION_STRING = "storage-connection-string"
STORAGE_ACCOUNT_KEY = "storage-account-key"
STORAGE_SAS_TOKEN = "storage-sas-token"
AZUREML_CLIENT_SECRET = "azureml-client-secret"
KNOWN_SECRETS = (
    SCORING_ENDPOINT_KEY,
    STORAGE_CONNECTION_STRING,
    STORAGE_ACCOUNT_KEY,
    STORAGE_SAS_TOKEN,
    AZUREML_CLIENT_SECRET,
)

STORAGE_ENV_VAR = "NEUROHSI_STORAGE_CONNECTION_STRING"


class CredentialError(NeuroHSIError, ValueError):
    """A secret is missing or the keyring cannot be used."""


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites each record's message with :func:`redact`.

    Install on handlers (``install_log_redaction()`` does it for the root logger's
    handlers) so third-party loggers such as azure.core's HTTP policy cannot leak keys.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach a :class:`RedactingFilter` to ``logger`` (root by default) and its handlers."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter()
    logger.addFilter(flt)
    for handler in logger.handlers:
        handler.addFilter(flt)
    return flt


def _keyring():
    import keyring

    return keyring


def keyring_available() -> bool:
    """Whether this machine has a keyring that can hold secrets (no probe write; never raises).

    A fresh Linux workstation without a Secret Service has only keyring's "fail"
    backend: callers ask this once and offer a session-only key instead of failing.
    """
    try:
        from keyring.backends.fail import Keyring as NoKeyring

        backend = _keyring().get_keyring()
    except Exception:  # an unimportable or broken keyring is no keyring
        return False
    chained = getattr(backend, "backends", None)  # keyring's ChainerBackend
    if chained is not None:
        return any(not isinstance(b, NoKeyring) for b in chained)
    return not isinstance(backend, NoKeyring)


_SESSION_SECRETS: dict[str, str] = {}  # "for this session only" (no keyring here): process memory, never disk


def set_session_secret(name: str, value: str | None) -> None:
    """Keep ``value`` under ``name`` in this process's memory until it exits (None forgets it).

    For machines without a keyring: the technician can still finish from the GUI, and
    nothing is written anywhere. :func:`get_secret` returns it before the keyring's.
    """
    _check_name(name)
    if value is None:
        _SESSION_SECRETS.pop(name, None)
        return
    if not isinstance(value, str) or not value:
        raise CredentialError(f"secret {name!r} must be a non-empty string")
    remember_secret(value)
    _SESSION_SECRETS[name] = value


def get_secret(name: str) -> str | None:
    """The secret under ``name``: this session's (see :func:`set_session_secret`), else the keyring's, else None."""
    _check_name(name)
    if name in _SESSION_SECRETS:
        return _SESSION_SECRETS[name]
    from keyring.errors import NoKeyringError

    try:
        value = _keyring().get_password(SERVICE, name)
    except NoKeyringError:
        return None  # no OS keyring on this machine (headless): nothing stored there
    except Exception as exc:  # keyring backends raise assorted errors; none should carry the secret
        raise CredentialError(f"cannot read {name!r} from the keyring: {exc.__class__.__name__}") from None
    remember_secret(value)
    return value


def set_secret(name: str, value: str) -> None:
    """Store ``value`` under ``name`` in the keyring."""
    _check_name(name)
    if not isinstance(value, str) or not value:
        raise CredentialError(f"secret {name!r} must be a non-empty string")
    remember_secret(value)
    from keyring.errors import NoKeyringError

    try:
        _keyring().set_password(SERVICE, name, value)
    except NoKeyringError:
        raise CredentialError(
            f"cannot store {name!r}: no OS keyring is available on this machine "
            "(unlock or install one; automation can use environment variables instead)"
        ) from None
    except Exception as exc:
        raise CredentialError(f"cannot store {name!r} in the keyring: {exc.__class__.__name__}") from None


def delete_secret(name: str) -> bool:
    """Remove ``name`` from the keyring; False when it was not there."""
    _check_name(name)
    from keyring.errors import NoKeyringError, PasswordDeleteError

    try:
        _keyring().delete_password(SERVICE, name)
    except (PasswordDeleteError, NoKeyringError):  # nothing stored, or nowhere it could be
        return False
    except Exception as exc:
        raise CredentialError(f"cannot delete {name!r} from the keyring: {exc.__class__.__name__}") from None
    return True


def resolve_storage_connection_string(explicit: str | None = None) -> str | None:
    """Connection string by precedence: explicit argument > env NEUROHSI_STORAGE_CONNECTION_STRING > keyring."""
    for value in (explicit, os.environ.get(STORAGE_ENV_VAR)):
        if value:
            remember_secret(value)
            return value
    return get_secret(STORAGE_CONNECTION_STRING)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise CredentialError(f"secret name must be a non-empty string, got {name!r}")
