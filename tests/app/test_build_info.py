"""Build identity (``app.build_info``), ``neurohsi --version`` and the bundle's build-info writer."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import build_info as bi
from tests.support.cli import neurohsi

ROOT = Path(__file__).resolve().parents[2]


def test_source_install_has_no_build_date_or_commit():
    info = bi.build_info()
    assert info == {"version": info["version"], "build_date": None, "commit": None, "bundled": False}
    assert info["version"] not in ("", "unknown")


def test_bundled_reads_build_info_json(tmp_path, monkeypatch):
    path = tmp_path / "build_info.json"
    path.write_text(json.dumps({"version": "9.8.7", "build_date": "2026-11-29T04:00:00Z", "commit": "abc123"}))
    monkeypatch.setattr(bi, "BUILD_INFO_PATH", path)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert bi.build_info() == {"version": "9.8.7", "build_date": "2026-11-29T04:00:00Z", "commit": "abc123",
                               "bundled": True}


@pytest.mark.parametrize("text", ["not json", json.dumps(["a list"]), json.dumps({"version": 3})])
def test_bad_build_info_falls_back_to_package_version(tmp_path, text):
    path = tmp_path / "build_info.json"
    path.write_text(text)
    info = bi.build_info(path)
    assert info["version"] == bi.app_version() and info["build_date"] is None and info["commit"] is None


def test_version_flag_prints_version_to_stdout():
    result = neurohsi("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"neurohsi {bi.build_info()['version']} (source install)"


def test_write_build_info_writes_version_date_and_commit(tmp_path):
    """The writer the bundle build runs first: pyproject version, UTC date, this checkout's commit."""
    sys.path.insert(0, str(ROOT / "packaging" / "desktop"))
    try:
        import write_build_info
    finally:
        sys.path.pop(0)
    info = write_build_info.build_info(ROOT)
    assert info["version"] == bi.app_version()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["build_date"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert info["commit"].split("-")[0] == head.stdout.strip()
    assert write_build_info.git_commit(tmp_path) == "unknown"  # no repository there


def test_windows_version_resource_is_a_vsversioninfo_expression():
    """The text PyInstaller evaluates for neurohsi.exe's version resource (pefile, hence Windows, to load)."""
    sys.path.insert(0, str(ROOT / "packaging" / "desktop"))
    try:
        import write_build_info
    finally:
        sys.path.pop(0)
    info = {"version": "1.2.3", "build_date": "2026-11-29T04:00:00Z", "commit": "0123456789abcdef"}
    text = write_build_info.windows_version_resource(info)
    names = ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct", "VarFileInfo",
             "VarStruct")
    calls = {name: (lambda name: lambda *args, **kwargs: (name, args, kwargs))(name) for name in names}
    tree = eval(text, {"__builtins__": {}}, calls)  # only those constructors, as PyInstaller's loader
    assert tree[0] == "VSVersionInfo"
    assert tree[2]["ffi"][2]["filevers"] == (1, 2, 3, 0)
    table = tree[2]["kids"][0][1][0][0]  # StringFileInfo([StringTable(lang, [StringStruct(k, v), ...])])
    strings = dict(struct[1] for struct in table[1][1])
    assert strings["FileVersion"] == "1.2.3" and "0123456789ab" in strings["ProductVersion"]
    assert "research use only" in strings["FileDescription"]
