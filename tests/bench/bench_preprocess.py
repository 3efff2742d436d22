"""Benchmark: NeuroHSI's preprocessing chain against a thesis-style implementation.

Writes a full-sensor 1088x2048 uint16 (10-bit) raw/dark/white triplet, with Ximea
metadata, to TIFF files in a temporary folder, then times

* NeuroHSI: read the three TIFFs + preprocess (``load_capture`` + ``preprocess_capture``),
  and ``preprocess`` alone on frames already in memory;
* thesis-style: read the TIFFs, float64 calibration, cube formed band by band, the
  spectral correction as a per-pixel Python loop (``SCM @ spectrum`` for each of the
  88,753 pixels), RMS normalisation;
* the trust checks: ``assess_quality`` on the triplet and ``ood_mask`` on the cube
  (a description fitted on a synthetic brain capture), target <= 10 ms together;
* raw -> map warm: ``core.model.inference.classify`` with the demo model, target <= 80 ms.

Run:  .venv/bin/python tests/bench/bench_preprocess.py [--runs 30] [--thesis-runs 3]
Not collected by pytest; prints a table and the machine it ran on.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile, position_wavelengths
from core.capture.files import load_capture, write_frame
from core.capture.metadata import CaptureMetadata
from core.spectral.chain import preprocess, preprocess_capture
from core.capture.quality import assess_quality

SHAPE = (1088, 2048)


def write_triplet(folder: Path) -> Path:
    """A realistic-looking 10-bit capture (vignetted white, noisy dark) named the NEMESIS way."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    vignette = 1.0 - 0.35 * (((rows - SHAPE[0] / 2) / SHAPE[0]) ** 2 + ((cols - SHAPE[1] / 2) / SHAPE[1]) ** 2)
    dark = rng.normal(40, 3, SHAPE).clip(0, 1023).astype(np.uint16)
    white = (dark + 900 * vignette + rng.normal(0, 8, SHAPE)).clip(0, 1023).astype(np.uint16)
    raw = (dark + (white - dark) * rng.uniform(0.1, 0.7, SHAPE)).astype(np.uint16)
    profile = load_profile(THESIS_PROFILE_ID)
    meta = CaptureMetadata(
        camera_model=profile.camera_model,
        serial="BENCH0001",
        exposure_us=40000.0,
        filter_offset_xy=profile.offset_xy,
        filter_size_wh=profile.area_wh,
        pattern_wh=profile.pattern_wh,
        wavelengths_nm=position_wavelengths(profile),  # per pattern position, as the camera writes them
    )
    raw_path = write_frame(folder / "ID0001C01.tif", raw, meta)
    write_frame(folder / "ID0001CD01.tif", dark, meta)
    write_frame(folder / "ID0001CW01.tif", white, meta)
    return raw_path


def thesis_style(raw_path: Path, dark_path: Path, white_path: Path, scm: np.ndarray) -> np.ndarray:
    """The thesis's way: float64 throughout, and a Python loop over pixels for the SCM."""
    raw = tifffile.imread(raw_path).astype(np.float64)
    dark = tifffile.imread(dark_path).astype(np.float64)
    white = tifffile.imread(white_path).astype(np.float64)
    calibrated = (raw - dark) / (white - dark)
    calibrated = calibrated[:1085, :2045]
    cube = np.zeros((217, 409, 25))
    for b in range(25):
        cube[:, :, b] = calibrated[b // 5 :: 5, b % 5 :: 5]
    scm = scm.astype(np.float64)
    for r in range(cube.shape[0]):
        for c in range(cube.shape[1]):
            cube[r, c, :] = scm @ cube[r, c, :]
    rms = np.sqrt(np.mean(cube**2, axis=2))
    return cube / rms[:, :, None]


def timed(fn, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of each run (CPU time shows how much other load inflated the wall time)."""
    fn()  # warm-up: page cache, imports, allocator
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def blas_threads() -> str:
    """OpenBLAS's thread count, asked of the library numpy loaded (no threadpoolctl needed)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "unknown"
    libs = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and ".so" in line}
    for lib in sorted(libs):
        handle = ctypes.CDLL(lib)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(handle, symbol):
                return f"{getattr(handle, symbol)()} ({Path(lib).name})"
    return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs for NeuroHSI (>= 15)")
    parser.add_argument("--thesis-runs", type=int, default=3, help="timed runs for the slow thesis-style loop")
    args = parser.parse_args()

    profile = load_profile(THESIS_PROFILE_ID)
    with tempfile.TemporaryDirectory(prefix="neurohsi-bench-") as folder:
        raw_path = write_triplet(Path(folder))
        dark_path, white_path = raw_path.with_name("ID0001CD01.tif"), raw_path.with_name("ID0001CW01.tif")
        capture = load_capture(raw_path)

        # Same answer before timing anything.
        ours = preprocess_capture(capture)
        theirs = thesis_style(raw_path, dark_path, white_path, profile.scm)
        max_diff = float(np.abs(ours.data - theirs).max())

        rows = [
            ("NeuroHSI: read 3 TIFFs + preprocess", timed(lambda: preprocess_capture(load_capture(raw_path)), args.runs)),
            ("NeuroHSI: preprocess only", timed(lambda: preprocess(capture.raw, capture.dark, capture.white, profile), args.runs)),
            ("NeuroHSI: read 3 TIFFs only", timed(lambda: load_capture(raw_path), args.runs)),
            (
                "thesis-style: read + float64, per-pixel SCM loop",
                timed(lambda: thesis_style(raw_path, dark_path, white_path, profile.scm), max(1, args.thesis_runs)),
            ),
        ]
        trust_rows, trust_ms, map_ms = trust_and_map(capture, ours, args.runs)
        rows += trust_rows

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cpu_model()}; {affinity} usable cores ({os.cpu_count()} online); {platform.platform()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, tifffile {tifffile.__version__}, BLAS threads {blas_threads()}")
    print(f"input: {SHAPE[0]}x{SHAPE[1]} uint16 triplet from TIFF -> cube {ours.data.shape} {ours.data.dtype}")
    print(f"max |NeuroHSI - thesis-style| = {max_diff:.2e}")
    print()
    print(f"| {'implementation':<48} | runs | median ms | min ms | max ms | median CPU ms |")
    print(f"|{'-' * 50}|-----:|----------:|-------:|-------:|--------------:|")
    for name, (wall, cpu) in rows:
        ms = [t * 1e3 for t in wall]
        print(
            f"| {name:<48} | {len(ms):>4} | {statistics.median(ms):>9.1f} | {min(ms):>6.1f} | {max(ms):>6.1f} "
            f"| {statistics.median(cpu) * 1e3:>13.1f} |"
        )
    full = statistics.median(rows[0][1][0]) * 1e3
    thesis = statistics.median(rows[3][1][0]) * 1e3
    print()
    print(f"load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (other processes share the cores)")
    print(f"speed-up (read + preprocess, medians): {thesis / full:.1f}x; target median <= 60 ms: {'met' if full <= 60 else 'NOT met'}")
    print(f"quality + out-of-distribution (medians): {trust_ms:.1f} ms; target <= 10 ms: {'met' if trust_ms <= 10 else 'NOT met'}")
    print(f"raw -> map warm (classify, median): {map_ms:.1f} ms; target <= 80 ms: {'met' if map_ms <= 80 else 'NOT met'}")
    return 0


def trust_and_map(capture, cube, runs: int):
    """Rows for the quality checks, the OOD mask and raw -> map; medians (ms) of trust checks and of the map."""
    from core.model.inference import classify
    from core.model.choice import resolve_model
    from core.spectral.ood import fit_ood_from_cubes, ood_mask
    from core.capture.synthetic.captures import generate_capture

    brain = generate_capture(seed=5)
    brain_cube = preprocess_capture(brain.to_capture())
    description = fit_ood_from_cubes([(brain_cube.data, brain.labels, brain_cube.valid)])
    model = resolve_model(None)
    quality = timed(lambda: assess_quality(capture), runs)
    ood = timed(lambda: ood_mask(description, cube), runs)
    both = timed(lambda: (assess_quality(capture), ood_mask(description, cube)), runs)
    raw_to_map = timed(lambda: classify(capture, model), runs)
    rows = [
        ("trust: quality checks (assess_quality)", quality),
        ("trust: out-of-distribution mask (ood_mask)", ood),
        ("trust: quality + out-of-distribution", both),
        ("raw (in memory) -> map, warm (classify)", raw_to_map),
    ]
    return rows, statistics.median(both[0]) * 1e3, statistics.median(raw_to_map[0]) * 1e3


if __name__ == "__main__":
    sys.exit(main())
