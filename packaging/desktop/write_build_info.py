"""Write ``resources/build_info.json`` (version, UTC build date, git commit) before PyInstaller runs.

The bundle's ``neurohsi --version`` and Help > About read it through ``app.build_info``.
Also writes ``build/version_info.txt``, the Windows version resource of ``neurohsi.exe``
(PyInstaller's VSVersionInfo text; the spec uses it on Windows only).
Run with the build interpreter from the repository root: ``python packaging/desktop/write_build_info.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # core helpers, without an installed package

from core.clock import utc_now_iso  # noqa: E402
from core.fileio import atomic_write_text  # noqa: E402

OUTPUT = ROOT / "resources" / "build_info.json"
VERSION_RESOURCE = ROOT / "build" / "version_info.txt"


def git_commit(root: Path) -> str:
    """The checked-out commit, with ``-dirty`` when tracked files differ; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def build_info(root: Path = ROOT) -> dict:
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    return {"version": version, "build_date": utc_now_iso(), "commit": git_commit(root)}


def windows_version_resource(info: dict) -> str:
    """PyInstaller's version-resource text for ``info``: numeric file version from the first three
    release numbers of the version, product version with the commit."""
    numbers = [int(part) for part in info["version"].split("+")[0].split(".")[:3] if part.isdigit()]
    numbers = tuple((numbers + [0, 0, 0, 0])[:4])
    strings = {
        "CompanyName": "NeuroHSI",
        "FileDescription": "NeuroHSI - hyperspectral brain-tissue maps (research use only, not for diagnosis)",
        "FileVersion": info["version"],
        "InternalName": "neurohsi",
        "OriginalFilename": "neurohsi.exe",
        "ProductName": "NeuroHSI",
        "ProductVersion": f"{info['version']} ({info['commit'][:12]}, built {info['build_date']})",
    }
    table = ", ".join(f"StringStruct({key!r}, {value!r})" for key, value in strings.items())
    return (
        "VSVersionInfo(\n"
        f"  ffi=FixedFileInfo(filevers={numbers}, prodvers={numbers}, mask=0x3f, flags=0x0, OS=0x40004,\n"
        "                    fileType=0x1, subtype=0x0, date=(0, 0)),\n"
        f"  kids=[StringFileInfo([StringTable('040904B0', [{table}])]),\n"
        "        VarFileInfo([VarStruct('Translation', [1033, 1200])])]\n"
        ")\n"
    )


def main() -> int:
    info = build_info()
    atomic_write_text(OUTPUT, json.dumps(info, indent=2) + "\n")
    VERSION_RESOURCE.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(VERSION_RESOURCE, windows_version_resource(info))
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {info['version']} {info['commit'][:12]} {info['build_date']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
