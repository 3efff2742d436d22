"""Run the real ``neurohsi`` command line in a subprocess and check its error contract."""
from __future__ import annotations

import subprocess
import sys


def neurohsi(*args, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m app.cli.main ARGS`` with captured text output."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Non-zero exit, exactly one stderr line ``neurohsi: error: ...`` holding every fragment, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("neurohsi: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
