"""Which NeuroHSI this is: version, bundle build date and commit, whether it runs from a bundle.

The desktop bundle carries ``resources/build_info.json`` (``{"version", "build_date",
"commit"}``), written by ``packaging/desktop/write_build_info.py`` just before
PyInstaller runs; a source checkout has none. No Qt here, so ``neurohsi --version``
and Help ▸ About report the same thing.
"""
from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from pathlib import Path

from resources import RESOURCES_DIR

BUILD_INFO_PATH = RESOURCES_DIR / "build_info.json"
DISTRIBUTION = "neurohsi"
FIELDS = ("version", "build_date", "commit")


def is_bundled() -> bool:
    """True inside the PyInstaller bundle (``sys.frozen`` is set by its bootloader)."""
    return bool(getattr(sys, "frozen", False))


def app_version() -> str:
    """The installed distribution's version, else pyproject.toml's, else ``"unknown"``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
    except OSError:
        match = None
    return match.group(1) if match else "unknown"


def build_info(path: Path | None = None) -> dict:
    """``{"version": str, "build_date": str | None, "commit": str | None, "bundled": bool}``.

    ``build_date`` (ISO 8601 UTC) and ``commit`` come from the build file: ``path`` when
    given, else the bundle's ``resources/build_info.json`` (read only when bundled: a stale
    file from an earlier ``make bundle`` says nothing about this checkout). A missing or
    damaged file leaves them None; that is not an error.
    """
    info: dict = {"version": app_version(), "build_date": None, "commit": None, "bundled": is_bundled()}
    if path is None and not info["bundled"]:
        return info
    try:
        data = json.loads(Path(path or BUILD_INFO_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return info
    if isinstance(data, dict):
        info.update({key: data[key] for key in FIELDS if isinstance(data.get(key), str)})
    return info
