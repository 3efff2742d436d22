"""What the CLI and the GUI call: ``record(event, **details)`` into the user's audit log.

Events (``EVENTS``): a capture opened, classified (model sha256, quality status,
OOD / uncertain / masked shares, local or remote), exported, sent to PACS, labels
saved, dataset uploaded, training submitted, model installed or reverted, settings
changed. Who: the OS user and the operator name chosen in the app (shared theatre
logins); when: UTC. Details are small JSON values only: image data is refused,
secret-looking keys are dropped and text is redacted (``core.redaction``), so the
log never holds a key or a pixel. Patient ids may appear (the log stays on this machine).
"""
from __future__ import annotations

import getpass
import logging
import math
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from core.audit.log import AuditEntry, AuditLog, AuditError
from core.fileio import neurohsi_home
from core.redaction import redact

EVENTS = (
    "capture_opened",
    "classified",
    "exported",
    "sent",
    "labels_saved",
    "dataset_uploaded",
    "training_submitted",
    "model_installed",
    "model_reverted",
    "settings_changed",
)
OPERATOR_ENV = "NEUROHSI_OPERATOR"
_SECRET_WORDS = ("secret", "password", "token", "sas", "key", "credential", "connection_string")
_MAX_TEXT = 500  # characters per string value: a path or a message, never a payload
_MAX_ITEMS = 64  # per list or dict
_log = logging.getLogger("neurohsi.audit")
_operator = ""
_lock = threading.Lock()


def audit_log_path() -> Path:
    """``$NEUROHSI_HOME/audit/audit.sqlite`` (head file beside it)."""
    return neurohsi_home() / "audit" / "audit.sqlite"


def default_log() -> AuditLog:
    return AuditLog(audit_log_path())


def set_operator(name: str | None) -> None:
    """The operator chosen in the app (shared theatre logins); "" for none. The CLI reads ``NEUROHSI_OPERATOR``."""
    global _operator
    _operator = " ".join(str(name or "").split())[:64]


def current_operator() -> str:
    return _operator or " ".join(os.environ.get(OPERATOR_ENV, "").split())[:64]


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers): still say something
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def clean_details(details: Mapping) -> dict:
    """``details`` as small JSON values: numbers, text (redacted, cut), lists and dicts of them.

    Raises ``TypeError`` for image data (arrays, bytes) so a caller's mistake is found in
    tests, never written; secret-looking keys are dropped.
    """
    return {str(k): _clean(v, str(k)) for k, v in details.items() if not _secret_key(str(k))}


def record(event: str, log: AuditLog | None = None, **details) -> AuditEntry | None:
    """Append ``event`` with ``details`` to the user's audit log; None (and a logged error) when it cannot.

    An audit failure (disk full, locked file) must not stop a surgeon's map, so it is
    logged, not raised; ``neurohsi audit verify`` shows any gap it leaves.
    Unknown events and image data are programming errors and raise ``ValueError`` / ``TypeError``.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown audit event {event!r} (known: {', '.join(EVENTS)})")
    cleaned = clean_details(details)
    log = log or default_log()
    try:
        with _lock:
            return log.append(event, cleaned, os_user=os_user(), operator=current_operator())
    except (AuditError, OSError) as exc:
        _log.error("audit entry %s not written: %s", event, exc)
        return None


def classification_details(result, *, capture: str | None = None) -> dict:
    """The ``classified`` facts of a :class:`core.model.inference.ClassificationResult`.

    Model identity (name, version, sha256), quality status, the out-of-distribution,
    uncertain and masked (not classified) shares, and where it ran.
    """
    import numpy as np

    labels = np.asarray(result.labels)
    total = max(labels.size, 1)
    if hasattr(result, "uncertain_fraction"):
        # the product's own flag (core.model.uncertainty, where this build has it): None when it is off
        uncertain = result.uncertain_fraction
    else:
        uncertain = None
        probabilities = getattr(result, "probabilities", None)
        if probabilities is not None and np.ndim(probabilities) == 3 and probabilities.shape[-1] > 0:
            # no flag in this build: share where no class is more likely than not
            uncertain = float(np.mean(np.max(probabilities, axis=-1) < 0.5))
    quality = getattr(result, "quality", None)
    info = result.model
    return {
        "capture": capture,
        "model": {"name": info.name, "version": info.version, "sha256": info.sha256},
        "source": "local" if result.source == "local" else "remote",
        "endpoint": None if result.source == "local" else result.source,
        "quality": None if quality is None else quality.status,
        "ood_share": None if getattr(result, "ood_fraction", None) is None else round(float(result.ood_fraction), 6),
        "uncertain_share": None if uncertain is None else round(float(uncertain), 6),
        "masked_share": round(float(np.count_nonzero(labels == 0)) / total, 6),
        "shape": list(labels.shape),
    }


def record_model_change(event: str, path, label: str = "", previous: str | None = None) -> AuditEntry | None:
    """Audit ``model_installed`` / ``model_reverted``: the model file ("" = the demo model) and its sha256."""
    import hashlib

    if event not in ("model_installed", "model_reverted"):
        raise ValueError(f"not a model change: {event!r}")
    sha256 = None
    if path and Path(path).is_file():
        sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()  # model files are about 50 KB
    return record(event, model=str(path or "") or "demo", label=label, sha256=sha256, previous=previous or None)


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS) and lowered not in {"sha256", "model_key"}


def _clean(value, key: str):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (str, Path)):
        text = redact(str(value))
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
    if isinstance(value, (bytes, bytearray, memoryview)) or hasattr(value, "__array_interface__"):
        if getattr(value, "ndim", None) == 0:  # a numpy scalar is a number, not image data
            return _clean(value.item(), key)
        raise TypeError(f"audit detail {key!r}: image data and bytes never go into the audit log")
    if isinstance(value, Mapping):
        if len(value) > _MAX_ITEMS:
            raise TypeError(f"audit detail {key!r}: {len(value)} items (at most {_MAX_ITEMS})")
        return clean_details(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        if len(value) > _MAX_ITEMS:
            raise TypeError(f"audit detail {key!r}: {len(value)} items (at most {_MAX_ITEMS})")
        return [_clean(v, key) for v in value]
    if hasattr(value, "item"):  # numpy scalar types
        return _clean(value.item(), key)
    raise TypeError(f"audit detail {key!r}: {type(value).__name__} is not a plain value")
