"""Blob storage errors: one redacted line each, and the translation of Azure SDK errors into them."""
from __future__ import annotations

import contextlib

from core.errors import NeuroHSIError
from remote.credentials import redact


class StorageError(NeuroHSIError, ValueError):
    """Blob storage cannot be used: one line, never the secret (text passes through redact)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(redact(message).split()))


class BlobNotFound(StorageError):
    """A dataset, model or blob is not in the container."""


class IntegrityError(StorageError):
    """A blob's content does not match its recorded sha256 (corrupted or tampered)."""


@contextlib.contextmanager
def storage_errors(doing: str, *, account_url: str, container: str):
    """Turn SDK errors raised inside the block into one clear, redacted :class:`StorageError` line.

    ``doing`` says what was going on ("uploading x/y.bin"); ``account_url`` and
    ``container`` name where.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    where = f"{account_url}/{container}"
    try:
        yield
    except StorageError:
        raise
    except ClientAuthenticationError:
        raise StorageError(
            f"storage at {where} refused the credentials while {doing} (wrong account key, SAS or identity)"
        ) from None
    except ResourceNotFoundError as exc:
        code = _code(exc) or "not found"
        if code == "ContainerNotFound":
            raise StorageError(f"container {container!r} does not exist at {account_url}") from None
        raise StorageError(f"{where}: {code} while {doing}") from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageError(f"storage at {account_url} is unreachable while {doing}: {_short(exc)}") from None
    except HttpResponseError as exc:
        code = _code(exc) or exc.status_code
        if exc.status_code == 403:
            raise StorageError(f"storage at {where} refused the credentials while {doing} ({code})") from None
        raise StorageError(f"storage error while {doing} at {where}: HTTP {exc.status_code} {code}") from None


def _code(exc) -> str | None:
    code = getattr(exc, "error_code", None)
    return None if code is None else str(getattr(code, "value", code))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]
