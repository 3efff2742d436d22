"""Benchmark: the user's command, ``neurohsi watch DIR --out OUT``, with the demo model, at camera rates.

A writer saves full-sensor raw TIFFs (1088 x 2048 uint16, thesis profile, the bytes
tifffile writes) into DIR at an offered rate, after one dark/white pair saved first;
``python -m app.cli.main watch DIR --out OUT`` (the installed ``neurohsi`` entry point's
module) runs as its own process. Per offered rate: maps (JSON lines) per second,
captures skipped, latency from the file closed by the writer to its JSON line read
here (the map and its files written: what a user waits for) p50/p95, the command's own
``file_to_map`` p95 (file found complete -> map ready), the command's CPU per map
(``/proc/PID/stat``, all its threads) and the median of each stage it reports. Then
its RSS (``/proc/PID/status`` VmRSS) every tenth of ``--captures`` captures at 10/s.

    .venv/bin/python tests/bench/bench_watch.py [--rates 20,10] [--seconds 10] [--captures 200|1000] [--stages]
        [--code OTHER_CHECKOUT]   # run the command from another checkout (before/after, back to back)

``--stages`` first prints CPU and wall ms of each stage of one warm raw -> map in this
process (demo model, its quality and out-of-distribution checks, cached references), on
one thread (each live classifier) and on every core (a single capture: the GUI, classify).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile  # noqa: E402
from core.capture.files import frame_to_bytes  # noqa: E402
from core.capture.synthetic.captures import generate_capture  # noqa: E402
from tests.support.stage_timing import print_stage_table  # noqa: E402

KEEP_FILES = 12  # raw frames kept in DIR; older ones are deleted, as a station rotating its files would
STAGES = ("read", "preprocess", "rgb", "quality", "infer", "ood", "total", "file_to_map")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Lines(threading.Thread):
    """Reads the command's JSON lines; remembers when each capture's line arrived (perf_counter)."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.arrived: dict[str, tuple[float, dict]] = {}

    def run(self) -> None:
        for line in self.stream:
            now = time.perf_counter()
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self.arrived[record["capture_id"]] = (now, record)


def offer(folder: Path, raw: bytes, *, rate: float, count: int, start_n: int, pid: int, sample_rss: int = 0):
    """Write ``count`` captures at ``rate``/s; returns {name: closed at} and RSS samples (MB)."""
    written, rss = {}, []
    start = time.perf_counter()
    for k in range(count):
        time.sleep(max(0.0, start + k / rate - time.perf_counter()))
        n = start_n + k
        name = f"ID0001C{n:05d}"
        with open(folder / f"{name}.tif", "wb") as f:
            f.write(raw)
        written[name] = time.perf_counter()
        if sample_rss and (k + 1) % sample_rss == 0:
            rss.append(proc_rss_mb(pid))
        (folder / f"ID0001C{n - KEEP_FILES:05d}.tif").unlink(missing_ok=True)
    return written, rss


def phase(folder, raw, lines: Lines, pid: int, *, rate: float, count: int, start_n: int, sample_rss: int = 0) -> dict:
    cpu0, t0 = proc_cpu_s(pid), time.perf_counter()
    written, rss = offer(folder, raw, rate=rate, count=count, start_n=start_n, pid=pid, sample_rss=sample_rss)
    last = f"ID0001C{start_n + count - 1:05d}"
    deadline = time.perf_counter() + 30
    while last not in lines.arrived and time.perf_counter() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    cpu = proc_cpu_s(pid) - cpu0
    got = {n: lines.arrived[n] for n in written if n in lines.arrived}
    latency = np.array([got[n][0] - written[n] for n in got]) * 1000
    records = [got[n][1] for n in sorted(got)]
    timings = {s: float(np.median([r["timings_ms"][s] for r in records if s in r["timings_ms"]]))
               for s in STAGES if any(s in r["timings_ms"] for r in records)}
    internal = [r["timings_ms"]["file_to_map"] for r in records]

    def pct(values, q):
        return float(np.percentile(values, q)) if len(values) else float("nan")

    first = [  # the phase's first captures: ms after the first was written, and the command's stages
        (round(1000 * (written[n] - min(written.values()))),
         {k: round(v) for k, v in got[n][1]["timings_ms"].items()} if n in got else "skipped")
        for n in list(written)[:12]
    ]
    return {
        "first": first,
        "rate": rate, "captures": count, "maps": len(got), "maps_per_s": len(got) / elapsed,
        "skipped": count - len(got), "missing": [k for k, n in enumerate(written) if n not in got], "with_files": sum(1 for r in records if r.get("outputs")),
        "p50": pct(latency, 50), "p95": pct(latency, 95), "internal_p95": pct(internal, 95),
        "cpu_ms_per_map": 1000 * cpu / max(1, len(got)), "timings": timings, "rss": rss,
    }


def stages(synthetic, repeats: int = 10) -> None:
    """CPU and wall ms per stage of one warm raw -> map, in this process (demo model)."""
    from core.capture.files import Capture, read_frame
    from core.capture.quality import assess_quality
    from core.model.choice import resolve_model
    from core.model.inference import classify_prepared, predict_dense, prepare
    from core.model.live import dense_net, local_classifier
    from core.model.trust import trust_of
    from core.spectral.chain import CalibrationCache, preprocess_capture
    from core.spectral.rgb import synthetic_rgb

    model = resolve_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ID0002C00001.tif"
        path.write_bytes(frame_to_bytes(synthetic.raw, synthetic.metadata))
        frame, meta = read_frame(path)
    capture = Capture(frame, synthetic.dark, synthetic.white, meta, path, None, None, path.stem)
    cache = CalibrationCache()
    prepared = prepare(capture, references=cache)
    dense = dense_net(model)
    live = local_classifier(model)
    kw = {"padding": model.info.padding, "class_ids": model.info.class_ids}
    rows = [
        ("quality checks", lambda: assess_quality(capture)),
        ("preprocess, cached references, 1 thread", lambda: preprocess_capture(capture, references=cache)),
        ("preprocess, cached references, every core",
         lambda: preprocess_capture(capture, references=cache, threads=None)),
        ("synthetic RGB", lambda: synthetic_rgb(prepared.cube)),
        ("network + softmax, 1 thread (live)", lambda: predict_dense(dense, prepared.cube, threads=1, **kw)),
        ("network + softmax, every core", lambda: predict_dense(dense, prepared.cube, **kw)),
        ("out-of-distribution + trust", lambda: trust_of(prepared.quality, model.info, prepared.cube)),
        ("warm raw -> map, 1 thread (live)", lambda: live(prepare(capture, references=cache))),
        ("warm raw -> map, every core",
         lambda: classify_prepared(prepare(capture, references=cache, threads=None), model)),
    ]
    print_stage_table(rows, repeats, title=f"stage (demo model, {repeats} runs, median)", width=42)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="20,10", help="offered capture rates per second (comma-separated)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each rate is offered")
    parser.add_argument("--captures", type=int, default=200, help="captures for the RSS run at 10/s (1000: the target)")
    parser.add_argument("--stages", action="store_true", help="first print CPU/wall ms per stage of one raw -> map")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose command runs (default: this one)")
    parser.add_argument("--stderr", type=Path, default=None,
                        help="keep the command's notices (skipped captures and why, problems) in this file")
    args = parser.parse_args()
    load_before = os.getloadavg()

    synthetic = generate_capture(seed=1, profile=load_profile(THESIS_PROFILE_ID))
    if args.stages:
        stages(synthetic)
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with tempfile.TemporaryDirectory(prefix="neurohsi-bench-watch-") as tmp:
        folder, out = Path(tmp) / "watch", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        (folder / "ID0001CD00001.tif").write_bytes(frame_to_bytes(synthetic.dark, synthetic.metadata))
        (folder / "ID0001CW00001.tif").write_bytes(frame_to_bytes(synthetic.white, synthetic.metadata))
        env = {**os.environ, "PYTHONPATH": str(args.code)}
        notices = open(args.stderr, "w") if args.stderr else subprocess.DEVNULL  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "watch", str(folder), "--out", str(out)],
            stdout=subprocess.PIPE, stderr=notices, text=True, env=env, cwd=args.code,
        )
        lines = Lines(proc.stdout)
        lines.start()
        try:
            n = 10
            phase(folder, raw, lines, proc.pid, rate=2, count=4, start_n=n)  # warm-up: start-up, model, caches
            n += 4
            rows = []
            for rate in (float(r) for r in args.rates.split(",")):
                count = max(2, int(rate * args.seconds))
                rows.append(phase(folder, raw, lines, proc.pid, rate=rate, count=count, start_n=n))
                n += count
                time.sleep(0.5)
            every = max(1, args.captures // 10)
            memory = phase(folder, raw, lines, proc.pid, rate=10, count=args.captures, start_n=n, sample_rss=every)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if args.stderr:
                notices.close()

    print(f"code: {args.code}")
    print(f"neurohsi watch DIR --out OUT, demo model, 1088 x 2048 thesis captures, {platform.machine()} "
          f"{os.cpu_count()} CPU(s), poll 20 ms, settle 50 ms")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"{'offered /s':>10} {'captures':>8} {'maps':>5} {'maps/s':>7} {'skipped':>7} {'files':>5} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'f2m p95':>7} {'CPU ms/map':>10}")
    for r in rows:
        print(f"{r['rate']:>10g} {r['captures']:>8} {r['maps']:>5} {r['maps_per_s']:>7.2f} {r['skipped']:>7} "
              f"{r['with_files']:>5} {r['p50']:>7.0f} {r['p95']:>7.0f} {r['internal_p95']:>7.0f} "
              f"{r['cpu_ms_per_map']:>10.0f}")
    for r in rows:
        if r["missing"]:
            print(f"{r['rate']:g}/s: skipped captures (0-based, in the order offered): {r['missing']}")
            if os.environ.get("BENCH_WATCH_FIRST"):
                for row in r["first"]:
                    print("   ", row)
    print("median ms per stage as the command reports them: " + "; ".join(
        f"{r['rate']:g}/s: " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()) for r in rows))
    print(f"RSS over {args.captures} captures at 10/s ({memory['maps']} maps, {memory['skipped']} skipped), "
          f"every {every}: " + " ".join(f"{v:.0f}" for v in memory["rss"]) + " MB")


if __name__ == "__main__":
    main()
