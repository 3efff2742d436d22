"""Build identity for ``neurohsi --version`` and Help > About: version, build date, commit, bundled.

The desktop bundle carries ``resources/build_info.json``, written by
``packaging/desktop/write_build_info.py`` just before PyInstaller runs. A source
install has no build: its version comes from the installed package metadata.
"""
from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

from resources import RESOURCES_DIR

BUILD_INFO_PATH = RESOURCES_DIR / "build_info.json"
FIELDS = ("version", "build_date", "commit")


def is_bundled() -> bool:
    """True inside the PyInstaller bundle (``sys.frozen`` is set by its bootloader)."""
    return bool(getattr(sys, "frozen", False))


def build_info(path: Path | None = None) -> dict:
    """``{"version", "build_date", "commit", "bundled"}``; build_date (ISO 8601 UTC) and commit are None
    for a source install. ``path`` (default: the bundle's ``resources/build_info.json``, read only when
    bundled) is read when given; a missing or unreadable file leaves the source-install values."""
    info: dict = {"version": _package_version(), "build_date": None, "commit": None, "bundled": is_bundled()}
    if path is None and not info["bundled"]:
        return info  # a stale build_info.json from an earlier `make bundle` says nothing about this checkout
    try:
        data = json.loads(Path(path or BUILD_INFO_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return info
    if isinstance(data, dict):
        info.update({key: data[key] for key in FIELDS if isinstance(data.get(key), str)})
    return info


def _package_version() -> str:
    try:
        return metadata.version("neurohsi")
    except metadata.PackageNotFoundError:
        return "unknown"
