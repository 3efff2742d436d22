"""Hand mutation check: change one piece of code, run the tests that should notice, put the code back.

    python -m tests.support.mutate FILE 'OLD TEXT' 'NEW TEXT' tests/core/test_x.py [more test paths]

``OLD TEXT`` must occur exactly once in ``FILE``. Prints ``CAUGHT`` (some test failed:
good) or ``SURVIVED`` (every test passed: the tests do not pin this behaviour) and
the failing test. The file is restored whatever happens (Ctrl+C included). Exit
status 0 when caught, 1 when the mutant survived, 2 on a usage error.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def mutate(path: Path, old: str, new: str, tests: list[str]) -> bool:
    """True when some test in ``tests`` fails with ``old`` replaced by ``new`` in ``path``."""
    source = path.read_text(encoding="utf-8")
    count = source.count(old)
    if count != 1:
        raise ValueError(f"{path}: the text to mutate occurs {count} times (must be once)")
    path.write_text(source.replace(old, new), encoding="utf-8")
    try:
        env = {**os.environ, "PYTHONPATH": os.getcwd(), "QT_QPA_PLATFORM": "offscreen"}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            capture_output=True, text=True, env=env,
        )
    finally:
        path.write_text(source, encoding="utf-8")
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    verdict = "CAUGHT" if done.returncode else "SURVIVED"
    print(f"{verdict} {path}: {old.strip()[:60]!r} -> {new.strip()[:60]!r}")
    for line in failed[:3]:
        print(f"    {line}")
    return done.returncode != 0


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, old, new, *tests = argv
    try:
        return 0 if mutate(Path(path), old, new, tests) else 1
    except (OSError, ValueError) as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
