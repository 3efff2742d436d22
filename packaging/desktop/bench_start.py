"""Start-up of the desktop bundle: exec to window grabbed, cold and warm, next to the source install.

Run after ``make bundle``, with the system interpreter (standard library only):
``python3 packaging/desktop/bench_start.py [--runs 3]``. Prints a Markdown table
(docs/benchmarks/bundle.md). Each run is ``neurohsi gui --screenshot PNG`` offscreen
with a clean environment: the time from exec until the process has shown its
window, grabbed it, saved the PNG and exited (an upper bound on "window shown").
Without a capture the app does not load torch (it loads on first classify); with
``CAPTURE --classify`` the time runs to the classified map on screen.
"Cold" first evicts every file of the bundle from the page cache
(posix_fadvise DONTNEED: only this bundle's pages, nothing else on the machine),
as after a reboot; "warm" runs right after another run.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def evict(folder: Path) -> int:
    """Drop ``folder``'s file pages from the page cache; returns the bytes advised."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                total += os.fstat(fd).st_size
            finally:
                os.close(fd)
    return total


def time_start(command: list[str], env: dict, work: Path, gui_args: tuple[str, ...] = ()) -> float:
    start = time.perf_counter()
    subprocess.run(command + ["gui", *gui_args, "--screenshot", str(work / "start.png")], cwd=work, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    elapsed = time.perf_counter() - start
    if not (work / "start.png").is_file():
        raise RuntimeError("no screenshot written")
    (work / "start.png").unlink()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "neurohsi")
    parser.add_argument("--venv-python", type=Path, default=ROOT / ".venv" / "bin" / "python",
                        help="source install to compare with (skipped when missing)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    exe = args.bundle / "neurohsi"
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurohsi-bench-start-") as tmp:
        work, home = Path(tmp) / "work", Path(tmp) / "home"
        work.mkdir()
        home.mkdir()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
        subprocess.run([str(exe), "demo-capture", "cap", "--seed", "1"], cwd=work, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        scenarios = (("window", ()), ("window, capture opened and classified",
                                      (str(work / "cap" / "ID0001C01.tif"), "--classify")))
        for what, gui_args in scenarios:
            cold = []
            for _ in range(args.runs):
                evict(args.bundle)
                cold.append(time_start([str(exe)], env, work, gui_args))
            warm = [time_start([str(exe)], env, work, gui_args) for _ in range(args.runs)]
            rows += [(f"bundle, cold (page cache evicted): {what}", cold), (f"bundle, warm: {what}", warm)]
            if args.venv_python.exists():
                venv_env = dict(env, PYTHONPATH=str(ROOT))
                command = [str(args.venv_python), "-m", "app.cli.main"]
                time_start(command, venv_env, work, gui_args)  # warm its caches too
                rows.append((f"source install (venv), warm: {what}",
                             [time_start(command, venv_env, work, gui_args) for _ in range(args.runs)]))
    load = os.getloadavg()[0]
    print(f"`python3 packaging/desktop/bench_start.py --runs {args.runs}`; {os.cpu_count()} cores "
          f"({platform.machine()}, shared), 1-min load average {load:.1f} at the end; "
          f"`neurohsi gui --screenshot` offscreen, exec to PNG saved and exit.\n")
    print("| start | median (s) | min (s) | max (s) | runs |")
    print("|---|---:|---:|---:|---:|")
    for label, times in rows:
        print(f"| {label} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} | {len(times)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
