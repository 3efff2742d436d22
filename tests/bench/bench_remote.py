"""Remote scoring benchmark: thesis JSON vs NeuroHSI binary, loopback, one full-sensor capture.

Same run, same capture (synthetic, 1088 x 2048 uint16 frames, thesis profile), same
model, the real azureml-inference-server-http on 127.0.0.1:

(a) thesis protocol: three frames as nested JSON integer lists, JSON answer;
(b) NeuroHSI binary protocol sending raw, dark and white TIFFs;
(c) NeuroHSI binary protocol with cached references (raw TIFF + two sha256).

Prints a table (request and response bytes, median and p90 end-to-end time, what a
100 Mbit/s link would add) and writes it to docs/benchmarks/remote.md.
End-to-end for (a) includes turning the frames into JSON and parsing the answer;
for (b)/(c) it is ScoringClient.classify_files (read files, hash, send, decode).

Usage: .venv/bin/python tests/bench/bench_remote.py [--repeats N] [--no-write]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

LINK_BITS_PER_S = 100e6  # a 100 Mbit/s hospital link


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed requests per binary case (thesis JSON: a third)")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks/remote.md")
    args = parser.parse_args(argv)

    import numpy as np
    import requests
    import torch

    from core.capture.files import Capture
    from core.model.inference import classify
    from core.model.files import load_model
    from core.capture.synthetic.captures import generate_capture
    from remote.scoring_client import ScoringClient
    from remote.scoring_server import local_scoring_server
    from resources import DEMO_MODEL_PATH
    from tests.support.scoring import save_random_model, thesis_json_request, write_capture

    workdir = Path(tempfile.mkdtemp(prefix="neurohsi-bench-remote-"))
    synthetic = generate_capture(seed=11)
    capture = Capture(synthetic.raw, synthetic.dark, synthetic.white, synthetic.metadata)
    raw_path = write_capture(workdir, capture)
    if DEMO_MODEL_PATH.is_file():
        model_path, model_note = DEMO_MODEL_PATH, "demo model (resources/models/demo.safetensors)"
    else:
        model_path = workdir / "bench.safetensors"
        save_random_model(model_path, profile_id=synthetic.profile.id, seed=0)
        model_note = "random-weight Conv2DNet (demo model not built)"
    model = load_model(model_path)
    local = classify(capture, model)
    local_times = []
    for _ in range(5):
        start = time.perf_counter()
        classify(capture, model)
        local_times.append(time.perf_counter() - start)

    rows = []
    with local_scoring_server(model_path) as url:
        # (a) thesis JSON protocol
        session = requests.Session()
        times, request_bytes, response_bytes = [], 0, 0
        for i in range(max(3, args.repeats // 3) + 1):
            start = time.perf_counter()
            body = json.dumps(thesis_json_request(capture)).encode()
            response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=300)
            response.raise_for_status()
            labels = np.asarray(response.json()["classification_map"], dtype=np.uint8)
            elapsed = time.perf_counter() - start
            if i:  # the first request warms the worker
                times.append(elapsed)
            request_bytes, response_bytes = len(body), len(response.content)
        if not np.array_equal(labels, local.labels):
            raise SystemExit("thesis JSON map differs from local classification")
        rows.append(("(a) thesis JSON (3 frames as lists)", request_bytes, response_bytes, times))

        # (b) binary, references sent every time; (c) binary, references cached by the service
        clients = {gz: ScoringClient(url, timeout=(5, 120), compress_upload=gz) for gz in (True, False)}
        for label, forget, gz in (
            ("(b) binary, raw+dark+white TIFF", True, False),
            ("(c) binary, cached references", False, False),
            ("(b) binary, raw+dark+white TIFF, gzip", True, True),
            ("(c) binary, cached references, gzip", False, True),
        ):
            client = clients[gz]
            times = []
            client.classify_files(raw_path)  # warm-up (and, for (c), the service caches the references)
            for _ in range(args.repeats):
                if forget:
                    client.forget_references()
                start = time.perf_counter()
                result = client.classify_files(raw_path)
                times.append(time.perf_counter() - start)
            if not np.array_equal(result.labels, local.labels):
                raise SystemExit(f"{label}: map differs from local classification")
            exchange = client.last_exchange
            rows.append((label, exchange["request_bytes"], exchange["response_bytes"], times))
            if label.startswith("(c)") and not gz:
                server_timings = result.timings_s

    lines = [
        "| case | request bytes | response bytes | median end-to-end | p90 | + 100 Mbit/s link |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, req, resp, times in rows:
        link = (req + resp) * 8 / LINK_BITS_PER_S
        lines.append(
            f"| {label} | {req:,} ({req / 1e6:.2f} MB) | {resp:,} ({resp / 1e6:.2f} MB) | "
            f"{statistics.median(times) * 1000:.0f} ms | {_percentile(times, 0.9) * 1000:.0f} ms | "
            f"{link * 1000:.0f} ms |"
        )
    cpu = platform.processor() or platform.machine()
    context = [
        f"Machine: {os.cpu_count()} CPU cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, "
        f"1 server worker; model: {model_note}.",
        f"Capture: synthetic seed 11, frames {capture.raw.shape[0]}x{capture.raw.shape[1]} uint16, "
        f"cube {local.labels.shape[0]}x{local.labels.shape[1]}x25; all three protocols returned the local label map exactly.",
        f"Local classify (same process, no network): median {statistics.median(local_times) * 1000:.0f} ms.",
        "Last (c) request, client timings: "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in server_timings.items())
        + " (server = service time after receiving the body; upload = request time minus server time).",
        "The 100 Mbit/s column is (request + response bytes) x 8 / 1e8 s: the extra transfer time on such a link.",
        f"Timed requests: {len(rows[0][3])} for (a), {args.repeats} for each other row, after one warm-up.",
        "gzip: `Content-Encoding: gzip`, level 1, which the client uses by default for endpoints that are not on "
        "this machine (`ScoringClient(compress_upload=None)`); on loopback it sends the TIFF bytes as they are. "
        "The service inflates gzip bodies within its size limit.",
        f"Load average during the run: {os.getloadavg()[0]:.1f} (the 2-core machine was shared with other jobs, "
        "so times vary by tens of percent between runs).",
    ]
    table = "\n".join(lines)
    print(table)
    print()
    print("\n".join(context))
    if not args.no_write:
        out = ROOT / "docs" / "benchmarks" / "remote.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Keep the section bench_scoring_load.py writes between its markers.
        old = out.read_text() if out.exists() else ""
        begin, end = "<!-- BEGIN scoring-load -->", "<!-- END scoring-load -->"
        kept = "\n" + begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n" if begin in old and end in old else ""
        out.write_text(
            "# Remote scoring benchmark\n\n"
            "`tests/bench/bench_remote.py` (loopback, real azureml-inference-server-http on 127.0.0.1). "
            "Targets for (c): <= 400 ms end to end and <= 5 MB on the wire per request. "
            "Thesis service: 27.4 s and about 31 MB per request.\n\n"
            f"{table}\n\n" + "\n".join(f"- {line}" for line in context) + "\n" + kept
        )
        print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
