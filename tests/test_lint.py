"""Static check of the whole tree with ruff (pyflakes rules and syntax errors).

Catches unused imports, undefined names and redefinitions before they become
bugs; the rule set is small on purpose so it fails only on real problems.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_pyflakes_problems():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "F,E9", "--output-format", "concise",
         "core", "remote", "app", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check_would_fail_on_an_undefined_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return undefined_name\n")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "F,E9", "--no-cache", str(bad)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "F821" in result.stdout
