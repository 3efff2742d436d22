"""Keep secrets out of text that may reach a log, a dialog or stderr (no keyring here).

:func:`remember_secret` registers a value (``remote.credentials`` does it for every
secret it hands out); :func:`redact` blanks every registered value and the
secret-bearing fields of connection strings and SAS query strings, registered or not.
"""
from __future__ import annotations

import re
import threading

REDACTED = "***"

# Values to blank from text; secrets shorter than this would blank ordinary words.
_MIN_SECRET_LEN = 6
_known_values: set[str] = set()
_lock = threading.Lock()

# Secret-bearing parts of connection strings and SAS query strings, redacted even
# when the value was never registered (e.g. typed on the command line).
_PATTERNS = (
    re.compile(r"(AccountKey=)[^;\s'\"]+", re.IGNORECASE),
    re.compile(r"(SharedAccessSignature=)[^;\s'\"]+", re.IGNORECASE),
    re.compile(r"([?&]sig=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"(client_secret=)[^&\s'\"]+", re.IGNORECASE),
)


def remember_secret(value: str | None) -> None:
    """Register a secret value (and the secret parts of a connection string) for redaction."""
    if not value:
        return
    parts = {value}
    for piece in value.split(";"):
        key, sep, val = piece.partition("=")
        if sep and key.strip().lower() in {"accountkey", "sharedaccesssignature"}:
            parts.add(val)
    with _lock:
        _known_values.update(p for p in parts if len(p) >= _MIN_SECRET_LEN)


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    with _lock:
        _known_values.clear()


def redact(text: str) -> str:
    """``text`` with every remembered secret and every key/signature field replaced by ``***``."""
    with _lock:
        values = sorted(_known_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
