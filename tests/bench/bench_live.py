"""Benchmark: live mode on a watched folder, full-resolution captures (1088 x 2048, thesis profile).

A writer thread saves real TIFF raw frames (the bytes tifffile writes, references
saved once) into a folder at a given rate; the live pipeline
(``core.capture.source.WatchedFolder`` + ``core.model.live.LivePipeline``, local
model) classifies them newest first. Reports per offered rate: maps per second,
captures skipped, and file written -> map ready latency p50/p95; then the RSS of
the process over N captures (old raw files are deleted as the run goes, as a
camera station would rotate them).

    .venv/bin/python tests/bench/bench_live.py [--rates 5,10,20] [--seconds 6] [--captures 200|1000] [--stages]

``--stages`` first prints the CPU (``time.process_time``, all threads) and wall ms of each
stage of one live capture, as the live path runs it (cached references, 1 torch thread)
and as the single-capture path does (references computed per capture, every core).

Weights are random (timing does not depend on them).
"""
from __future__ import annotations

import argparse
import os
import platform
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
from core.capture.source import WatchedFolder  # noqa: E402
from core.model.live import LivePipeline, local_classifier  # noqa: E402
from core.model.files import load_model  # noqa: E402
from core.capture.synthetic.captures import generate_capture  # noqa: E402
from tests.support.scoring import save_random_model  # noqa: E402
from tests.support.stage_timing import print_stage_table  # noqa: E402

LOAD_BEFORE = "?"
KEEP_FILES = 12  # raw frames kept in the folder; older ones are deleted by the writer


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class Writer(threading.Thread):
    """Saves ``count`` raw frames at ``rate`` per second; remembers when each was complete."""

    def __init__(self, folder: Path, raw: bytes, *, rate: float, count: int, start_n: int, sample_rss=None) -> None:
        super().__init__(daemon=True)
        self.folder, self.raw, self.rate, self.count, self.start_n = folder, raw, rate, count, start_n
        self.sample_rss = sample_rss  # every this many captures written, the process RSS (MB) goes in .rss
        self.written: dict[str, float] = {}
        self.rss: list[float] = []

    def run(self) -> None:
        start = time.perf_counter()
        for k in range(self.count):
            time.sleep(max(0.0, start + k / self.rate - time.perf_counter()))
            n = self.start_n + k
            name = f"ID0001C{n:05d}"
            with open(self.folder / f"{name}.tif", "wb") as f:
                f.write(self.raw)
                f.flush()
            self.written[name] = time.perf_counter()
            if self.sample_rss and (k + 1) % self.sample_rss == 0:
                self.rss.append(rss_mb())
            old = self.folder / f"ID0001C{n - KEEP_FILES:05d}.tif"
            if old.exists():
                old.unlink()


def run(folder: Path, raw: bytes, model, *, rate: float, count: int, start_n: int, sample_rss=None) -> dict:
    done: dict[str, float] = {}

    def on_result(live) -> None:
        done[live.prepared.capture.capture_id] = live.done_at

    pipeline = LivePipeline(WatchedFolder(folder), local_classifier(model), on_result=on_result)
    with pipeline:
        writer = Writer(folder, raw, rate=rate, count=count, start_n=start_n, sample_rss=sample_rss)
        t0, cpu0 = time.perf_counter(), time.process_time()
        writer.start()
        writer.join()
        last = f"ID0001C{start_n + count - 1:05d}"
        deadline = time.perf_counter() + 30
        while last not in done and time.perf_counter() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        stats = pipeline.stats
    latencies = np.array([done[n] - writer.written[n] for n in done if n in writer.written])
    return {
        "rate": rate,
        "captures": count,
        "maps": len(done),
        "maps_per_s": len(done) / elapsed,
        "skipped": stats.skipped,
        "cpu_ms_per_map": 1000 * cpu / max(1, len(done)),
        "p50_ms": 1000 * float(np.percentile(latencies, 50)) if len(latencies) else float("nan"),
        "p95_ms": 1000 * float(np.percentile(latencies, 95)) if len(latencies) else float("nan"),
        "rss": writer.rss,
        "seen": stats.captures,
    }


def stages(tmp: Path, synthetic, model, repeats: int = 8) -> None:
    """CPU and wall ms per stage of one live capture (median of ``repeats``)."""
    import json

    from app.cli.watch_commands import capture_line
    from core.capture.files import Capture, read_frame
    from core.model.inference import prepare, predict_dense
    from core.model.live import LiveResult, dense_net
    from core.spectral.chain import CalibrationCache, preprocess_capture
    from core.capture.quality import assess_quality
    from core.spectral.rgb import synthetic_rgb
    from core.model.trust import trust_of

    path = tmp / "ID0002C00001.tif"
    path.write_bytes(frame_to_bytes(synthetic.raw, synthetic.metadata))
    frame, meta = read_frame(path)
    capture = Capture(frame, synthetic.dark, synthetic.white, meta, path, None, None, path.stem)
    cache = CalibrationCache()
    prepared = prepare(capture, references=cache)
    dense = dense_net(model)
    kw = {"padding": model.info.padding, "class_ids": model.info.class_ids}
    result = local_result = None

    def classify_live():
        nonlocal local_result
        from core.model.live import local_classifier
        local_result = local_classifier(model)(prepared)[0]

    rows = [
        ("read + parse raw TIFF (completeness check)", lambda: read_frame(path)),
        ("quality checks", lambda: assess_quality(capture)),
        ("preprocess, references per capture", lambda: preprocess_capture(capture)),
        ("preprocess, cached references (live)", lambda: preprocess_capture(capture, references=cache)),
        ("synthetic RGB", lambda: synthetic_rgb(prepared.cube)),
        ("dense twin of the network (per map before)", lambda: dense_net(model)),
        ("inference, every core (2 threads)", lambda: predict_dense(dense, prepared.cube, **kw)),
        ("inference, 1 thread (live)", lambda: predict_dense(dense, prepared.cube, threads=1, **kw)),
        ("OOD / trust", lambda: trust_of(prepared.quality, model.info, prepared.cube)),
        ("local_classifier (live) incl. setup", classify_live),
    ]
    print_stage_table(rows, repeats)
    result = local_result
    live = LiveResult(prepared, result, None, 0.0, 0.1, 0)
    c = time.process_time()
    for _ in range(repeats):
        json.dumps(capture_line(live, {}))
    print(f"{'watch: JSON line':<45} {1000 * (time.process_time() - c) / repeats:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,10,20", help="offered capture rates per second (comma-separated)")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long each rate is offered")
    parser.add_argument("--captures", type=int, default=200, help="captures for the RSS run (1000 for the target)")
    parser.add_argument("--stages", action="store_true", help="first print CPU/wall ms per stage of one capture")
    args = parser.parse_args()
    global LOAD_BEFORE
    LOAD_BEFORE = f"{os.getloadavg()[0]:.2f}"

    synthetic = generate_capture(seed=1, profile=load_profile(THESIS_PROFILE_ID))
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with tempfile.TemporaryDirectory(prefix="neurohsi-bench-live-") as tmp:
        tmp = Path(tmp)
        save_random_model(tmp / "model.safetensors", profile_id=THESIS_PROFILE_ID)
        model = load_model(tmp / "model.safetensors")
        if args.stages:
            stages(tmp, synthetic, model)
        folder = tmp / "watch"
        folder.mkdir()
        (folder / "ID0001CD00001.tif").write_bytes(frame_to_bytes(synthetic.dark, synthetic.metadata))
        (folder / "ID0001CW00001.tif").write_bytes(frame_to_bytes(synthetic.white, synthetic.metadata))
        n = 10
        run(folder, raw, model, rate=5, count=5, start_n=n)  # warm-up: torch threads, caches
        n += 5
        rows = []
        for rate in (float(r) for r in args.rates.split(",")):
            count = max(2, int(rate * args.seconds))
            rows.append(run(folder, raw, model, rate=rate, count=count, start_n=n))
            n += count
        every = max(1, args.captures // 10)
        memory = run(folder, raw, model, rate=10, count=args.captures, start_n=n, sample_rss=every)

    print(f"live mode, 1088 x 2048 thesis captures, {platform.machine()} {os.cpu_count()} CPU(s), poll 20 ms, settle 50 ms")
    print(f"load average before: {LOAD_BEFORE}, after: {os.getloadavg()[0]:.2f}")
    print(f"{'offered /s':>10} {'captures':>9} {'maps':>5} {'maps/s':>7} {'skipped':>8} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'CPU ms/map':>10}")
    for r in rows:
        print(f"{r['rate']:>10g} {r['captures']:>9} {r['maps']:>5} {r['maps_per_s']:>7.2f} {r['skipped']:>8} "
              f"{r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['cpu_ms_per_map']:>10.0f}")
    rss = memory["rss"]
    print(f"RSS over {args.captures} captures offered at 10/s ({memory['seen']} seen, {memory['maps']} maps, "
          f"{memory['skipped']} skipped), sampled every {every} written: "
          + " ".join(f"{v:.0f}" for v in rss) + " MB" if rss else "RSS: no samples")


if __name__ == "__main__":
    main()
