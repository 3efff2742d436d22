"""Which capture a drag-and-drop of TIFF files means (no Qt: takes the dropped paths).

Dropping the raw frame alone opens it with its references found by name; dropping
the raw, dark and white frames together (any order) opens exactly those three.
NEMESIS names: ``IDxxxxCyy.tif`` raw, ``IDxxxxCDyy.tif`` dark, ``IDxxxxCWyy.tif`` white.
"""
from __future__ import annotations

import re
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")
_ROLE = re.compile(r"C([DW])\d+$", re.IGNORECASE)


def role_of(path: str | Path) -> str:
    """``"dark"``, ``"white"`` or ``"raw"`` from a NEMESIS file name (anything else counts as raw)."""
    match = _ROLE.search(Path(path).stem)
    if match is None:
        return "raw"
    return "dark" if match.group(1).upper() == "D" else "white"


def capture_from_drop(paths: list[str]) -> tuple[str, str | None, str | None] | None:
    """``(raw, dark, white)`` for the dropped TIFF files (references None: found by name), or None."""
    tiffs = [p for p in paths if p.lower().endswith(TIFF_SUFFIXES)]
    if not tiffs:
        return None
    by_role: dict[str, str] = {}
    for path in tiffs:
        by_role.setdefault(role_of(path), path)
    raw = by_role.get("raw")
    if raw is None:
        return None  # only references were dropped: nothing to open
    if "dark" in by_role and "white" in by_role:
        return raw, by_role["dark"], by_role["white"]
    return raw, None, None
