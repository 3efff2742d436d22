"""Write ``resources/build_info.json`` (version, UTC build date, git commit) before PyInstaller runs.

The bundle's ``neurohsi --version`` and Help > About read it through ``app.build_info``.
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


def main() -> int:
    info = build_info()
    atomic_write_text(OUTPUT, json.dumps(info, indent=2) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {info['version']} {info['commit'][:12]} {info['build_date']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
