"""The one UTC-time helper: every timestamp NeuroHSI writes is ISO 8601 in UTC."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now_iso(timespec: str = "seconds") -> str:
    """Now as ISO 8601 UTC with a ``Z`` suffix, e.g. ``2026-11-29T04:33:13Z``."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now_stamp() -> str:
    """Now in UTC as a compact stamp safe in file names, e.g. ``20261129-043313`` (job ids, model versions)."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def to_utc_iso(when: datetime | None, timespec: str = "seconds") -> str | None:
    """``when`` (aware) as ISO 8601 UTC with a ``Z`` suffix; None stays None."""
    if when is None:
        return None
    return when.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")
