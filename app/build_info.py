"""Which NeuroHSI this is: version, bundle build date, whether it runs from a bundle.

The desktop bundle build writes ``resources/build_info.json`` (``{"build_date":
"2026-11-29T05:00:00Z", ...}``); a source checkout has no such file. No Qt here,
so the CLI's ``--version`` and Help ▸ About report the same thing.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from resources import RESOURCES_DIR

BUILD_INFO_PATH = RESOURCES_DIR / "build_info.json"
DISTRIBUTION = "neurohsi"


def app_version() -> str:
    """The installed distribution's version, else pyproject.toml's, else ``"unknown"``."""
    from importlib import metadata

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
    """``{"version": str, "build_date": str | None, "bundled": bool}``.

    ``build_date`` comes from ``resources/build_info.json`` when the bundle build wrote
    it (ISO 8601 UTC); None from a source checkout or when the file is unreadable.
    ``bundled`` is True when running from a frozen bundle (PyInstaller sets ``sys.frozen``).
    """
    path = BUILD_INFO_PATH if path is None else Path(path)
    build_date = None
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(recorded, dict) and isinstance(recorded.get("build_date"), str):
            build_date = recorded["build_date"]
    except (OSError, ValueError):
        pass  # no file (a checkout) or a damaged one: the date is unknown, not an error
    return {"version": app_version(), "build_date": build_date, "bundled": bool(getattr(sys, "frozen", False))}
