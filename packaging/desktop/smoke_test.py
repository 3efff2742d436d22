"""Smoke test of the desktop bundle, as a PC without Python would run it.

Copies ``dist/neurohsi`` to a temporary folder outside the repository and runs the
copy with a clean environment (``PATH=/usr/bin:/bin``, a fresh ``HOME``,
``QT_QPA_PLATFORM=offscreen``; no virtual environment, no PYTHONPATH):
``--version``, ``demo-capture``, ``info``, ``classify`` and ``gui --classify
--screenshot``, plus a bad input (one-line error, no traceback), a short training
run started as ``neurohsi -m MODULE`` (how the local training backend starts its
job) and the one-line refusals of what the bundle leaves out (left_out.py).
Checks exit codes, JSON fields, the model's identity and the PNGs; prints a timing
table. Exit 0 when every check passes.

Standard library only: run it with the system interpreter, never the venv's
(``make bundle-test`` does: ``env -i PATH=/usr/bin:/bin python3 packaging/desktop/smoke_test.py``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BUNDLE = ROOT / "dist" / "neurohsi"
STEP_TIMEOUT_S = 300
SCREENSHOT_WH = (1600, 940)  # app.cli.gui_commands.SCREENSHOT_SIZE
MIN_SCREENSHOT_BYTES = 20_000  # a blank or failed grab of that size quantizes to a few KB


class SmokeFailure(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeFailure(what)


class Runner:
    """Runs the copied executable with a clean environment; records each step's wall time."""

    def __init__(self, exe: Path, work: Path, home: Path) -> None:
        self.exe, self.work = exe, work
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
        if os.name == "nt":  # the least Windows runs a program with: no Python on PATH either
            root = os.environ.get("SYSTEMROOT", r"C:\Windows")
            self.env = {"SYSTEMROOT": root, "PATH": rf"{root}\System32", "USERPROFILE": str(home),
                        "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
        self.timings: list[tuple[str, float, int]] = []

    def __call__(self, label: str, *args: str, expect_rc: int = 0) -> subprocess.CompletedProcess:
        start = time.perf_counter()
        result = subprocess.run([str(self.exe), *args], cwd=self.work, env=self.env, capture_output=True,
                                text=True, timeout=STEP_TIMEOUT_S, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        self.timings.append((label, elapsed, result.returncode))
        if result.returncode != expect_rc:
            raise SmokeFailure(f"{label}: exit {result.returncode}, expected {expect_rc}\n"
                               f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}")
        return result


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; SmokeFailure when the file is not a PNG."""
    head = path.read_bytes()[:24]
    check(head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name}: not a PNG")
    return struct.unpack(">II", head[16:24])


def json_out(result: subprocess.CompletedProcess, label: str) -> dict:
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise SmokeFailure(f"{label}: stdout is not JSON: {result.stdout[:500]!r}") from None


def run_checks(bundle: Path, tmp: Path) -> Runner:
    copy = tmp / "neurohsi"
    shutil.copytree(bundle, copy, symlinks=True)
    exe = copy / ("neurohsi.exe" if os.name == "nt" else "neurohsi")
    check(exe.is_file() and os.access(exe, os.X_OK), f"{exe}: missing or not executable")
    internal = copy / "_internal"
    work, home = tmp / "work", tmp / "home"
    work.mkdir()
    home.mkdir()
    run = Runner(exe, work, home)

    # --version: the build identity written before PyInstaller ran.
    built = json.loads((internal / "resources" / "build_info.json").read_text())
    out = run("--version", "--version").stdout.strip()
    check(re.fullmatch(r"neurohsi \S+ \(bundle built \S+, commit \S+\)", out) is not None, f"--version: {out!r}")
    check(built["version"] in out and built["build_date"] in out and built["commit"][:12] in out,
          f"--version {out!r} does not match build_info.json {built}")

    # Inside the bundle: frozen, every component About lists has its metadata, Qt's xcb and offscreen
    # platform plugins, the TIFF codecs.
    inside = json_out(run("-m bundle_check", "-m", "bundle_check"), "bundle_check")
    check(inside["frozen"] and inside["build"]["bundled"], f"bundle_check: not frozen: {inside}")
    missing = sorted(name for name, version in inside["components"].items() if version == "not installed")
    check(not missing, f"bundle_check: no metadata for {missing} (Help > About shows 'not installed')")
    for plugin in ("qwindows.dll", "qoffscreen.dll") if os.name == "nt" else ("libqxcb.so", "libqoffscreen.so"):
        check(plugin in inside["qt_platform_plugins"], f"bundle_check: Qt platform plugin {plugin} missing")
    check(inside["imagecodecs"] is not None, "bundle_check: imagecodecs (compressed TIFF) missing")
    failed = {name: why for name, why in inside["tiff_round_trips"].items() if why != "ok"}
    check(not failed, f"bundle_check: TIFF compressions that do not round-trip: {failed}")
    inference = inside["inference"]
    check(inference["runtime"] == "onnxruntime" and inference["max_probability_difference"] < 0.01,
          f"bundle_check: CPU inference not in ONNX Runtime at parity with torch: {inference}")

    # demo-capture with the bundle's own generator (scipy, tifffile), then info.
    run("demo-capture", "demo-capture", "cap", "--seed", "1")
    raw = work / "cap" / "ID0001C01.tif"
    for name in ("ID0001C01.tif", "ID0001CD01.tif", "ID0001CW01.tif"):
        check((work / "cap" / name).is_file(), f"demo-capture did not write {name}")
    info = json_out(run("info", "info", str(raw)), "info")
    check(info["capture_id"] == "ID0001C01", f"info capture_id {info.get('capture_id')!r}")
    check(len(info["shape"]) == 2 and min(info["shape"]) > 0, f"info shape {info.get('shape')}")
    check(info["dtype"] == "uint16" and info["max_value"] > 0, f"info dtype/max {info['dtype']} {info['max_value']}")
    check(isinstance(info["metadata"], dict) and info["metadata"].get("wavelengths_nm"), "info: no Ximea metadata")
    check(set(info["references"]) == {"dark", "white"}, f"info references {info['references']}")

    # classify with the bundled demo model: identity, class shares, outputs.
    summary = json_out(run("classify", "classify", str(raw), "--json", "-o", "map.png", "--overlay", "overlay.png"),
                       "classify")
    model_file = internal / "resources" / "models" / "demo.safetensors"
    check(summary["model"]["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest(),
          "classify: model sha256 is not the bundled demo model's")
    check(summary["source"] == "local", f"classify source {summary['source']!r}")
    shares = summary["classes_percent"]
    check(abs(sum(shares.values()) - 100.0) < 0.5, f"classify class shares do not add up: {shares}")
    check(sum(1 for name, pct in shares.items() if name != "not classified" and pct > 0) >= 2,
          f"classify found fewer than two classes: {shares}")
    check(summary["timings_ms"].get("total", 0) > 0, f"classify timings {summary['timings_ms']}")
    check("not for diagnostic use" in summary["notice"], "classify: research-use notice missing")
    h, w = summary["shape"]
    check(png_size(work / "map.png") == (w, h), "classify map.png size differs from the label map")
    check(png_size(work / "overlay.png")[0] >= w, "classify overlay.png narrower than the map")

    # Bad input: one line on stderr, exit 2, no traceback (the CLI's error contract, frozen).
    bad = run("classify (missing file)", "classify", "missing.tif", expect_rc=2)
    lines = bad.stderr.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("neurohsi: error: ") and "missing.tif" in lines[0],
          f"bad input: stderr {bad.stderr!r}")

    # Training through `neurohsi -m MODULE ARGS`, as the local retraining backend runs
    # `-m remote.training_job` (which trains in-process with core.training.run, the code
    # `train` runs here). Needs torch's optimiser and compiler modules, which the spec must not leave out.
    run("demo-data", "demo-data", "data", "--captures", "3", "--small", "--seed", "0")
    trained = json_out(run("-m app.cli.main train", "-m", "app.cli.main", "train", "data", "-o", "m.safetensors",
                           "--no-cv", "--epochs", "1", "--seed", "0"), "train")
    check((work / "m.safetensors").is_file() and trained["metrics"]["train"]["n"] > 0, f"train: {trained}")

    # A package the bundle leaves out (left_out.py): one line saying why, not a traceback.
    gone = run("-m remote.scoring_entry (left out)", "-m", "remote.scoring_entry", expect_rc=2)
    lines = gone.stderr.strip().splitlines()
    check(len(lines) == 1 and "not part of the desktop bundle" in lines[0] and "Traceback" not in gone.stderr,
          f"left-out module: stderr {gone.stderr!r}")
    serve = run("serve (left out)", "serve", expect_rc=2)
    check("not part of the desktop bundle" in serve.stderr and not serve.stdout, f"serve: {serve.stderr!r}")

    # The desktop app, offscreen: window only (start-up), then open + classify + grab.
    run("gui --screenshot (empty window)", "gui", "--screenshot", "empty.png")
    check(png_size(work / "empty.png") == SCREENSHOT_WH, "gui empty.png has the wrong size")
    run("gui --classify --screenshot", "gui", str(raw), "--classify", "--screenshot", "out.png")
    check(png_size(work / "out.png") == SCREENSHOT_WH, "gui out.png has the wrong size")
    size = (work / "out.png").stat().st_size
    check(size >= MIN_SCREENSHOT_BYTES, f"gui out.png is only {size} bytes")
    check(size > (work / "empty.png").stat().st_size, "gui out.png is no bigger than the empty window")
    if os.name != "nt":  # Windows keeps QSettings in the registry
        check(not (home / ".config" / "NeuroHSI").exists(), "gui --screenshot wrote the user's settings")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: dist/neurohsi)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and outputs")
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print(f"smoke test: {args.bundle}: no bundle there (run `make bundle`)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="neurohsi-bundle-smoke-"))
    check(ROOT not in tmp.parents, "the temporary folder must be outside the repository")
    try:
        run = run_checks(args.bundle.resolve(), tmp)
    except (SmokeFailure, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as exc:
        print(f"bundle smoke test FAILED: {exc}", file=sys.stderr)
        print(f"(outputs kept in {tmp})", file=sys.stderr)
        return 1
    print(f"{'step':<36} {'seconds':>8} {'exit':>5}")
    for label, seconds, rc in run.timings:
        print(f"{label:<36} {seconds:8.2f} {rc:5d}")
    # Not pytest's "N passed" wording: CI reads that line as the test count of the whole run.
    print(f"bundle smoke test OK: {len(run.timings)} steps")
    if args.keep:
        print(f"outputs in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
