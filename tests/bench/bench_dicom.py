"""Benchmark of the DICOM export and the send to a PACS on loopback.

    .venv/bin/python tests/bench/bench_dicom.py [--repeat 5] [--write docs/benchmarks/dicom.md]

One full-sensor capture (1088 x 2048, thesis profile) is classified once with the demo
model (not timed). Then, per repeat: build the SC + SEG (``core.output.dicom.build_dicom``),
write both files, and C-STORE both through the outbox (``remote.pacs.outbox.Outbox.flush``:
copy in, one association, audit entries) to pynetdicom's Storage SCP running in its own
process on 127.0.0.1 (it writes what it receives to disk, as a PACS would). Two map sizes:
the cube a full-sensor capture gives (217 x 409) and, as an upper bound, a map at the
sensor's filter-area resolution (1085 x 2045, the cube's map repeated 5 x 5). Target: <= 1 s.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def _upscaled(result, k: int):
    up = lambda a: None if a is None else np.repeat(np.repeat(a, k, axis=0), k, axis=1)  # noqa: E731
    return dataclasses.replace(result, labels=up(result.labels), rgb=up(result.rgb), ood_mask=up(result.ood_mask))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dicom-"))
    os.environ["NEUROHSI_HOME"] = str(work / "home")  # audit log and outbox of the benchmark, not the user's

    from core.capture.synthetic.captures import generate_capture
    from core.model.choice import resolve_model
    from core.model.inference import classify_files
    from core.output.dicom import StudyInfo, build_dicom
    from remote.pacs.node import PacsNode
    from remote.pacs.outbox import Outbox

    (work / "capture").mkdir()
    raw = generate_capture(seed=1).write_nemesis_files(work / "capture")
    result = classify_files(raw, resolve_model(None))
    scp = subprocess.Popen([sys.executable, "-m", "tests.support.dicom_scp", str(work / "pacs")], cwd=ROOT,
                           stdout=subprocess.PIPE, text=True)
    try:
        port = int(scp.stdout.readline())
        node = PacsNode("TESTPACS", "127.0.0.1", port)
        study = StudyInfo(patient_id="BENCH-1", patient_name="Bench^Mark")
        rows = []
        for label, res in (("217 x 409 (cube of a full-sensor capture)", result),
                           ("1085 x 2045 (filter-area resolution)", _upscaled(result, 5))):
            times = {"build": [], "write": [], "send": [], "total": []}
            for i in range(args.repeat):
                out = work / f"out-{len(rows)}-{i}"
                out.mkdir()
                t0 = time.perf_counter()
                export = build_dicom(res, study, capture_id="ID0001C01")
                t1 = time.perf_counter()
                sc, seg = export.write(out, stem="ID0001C01")
                t2 = time.perf_counter()
                outbox = Outbox(work / "outbox")
                outbox.add(sc, kind="SC")
                outbox.add(seg, kind="SEG")
                report = outbox.flush(node, force=True)
                t3 = time.perf_counter()
                if len(report.sent) != 2:
                    raise SystemExit(f"send failed: {report.failed}")
                for key, value in (("build", t1 - t0), ("write", t2 - t1), ("send", t3 - t2), ("total", t3 - t0)):
                    times[key].append(value)
            size = (sc.stat().st_size + seg.stat().st_size) / 1e6
            rows.append((label, size, {k: (statistics.median(v), min(v)) for k, v in times.items()}))
    finally:
        scp.terminate()
        scp.wait(10)

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.repeat} repeats, median (min) in ms.",
        "",
        "| map | SC + SEG size (MB) | build | write | send (outbox, C-STORE x2) | total |",
        "|---|---|---|---|---|---|",
    ]
    for label, size, t in rows:
        cell = lambda k: f"{1000 * t[k][0]:.0f} ({1000 * t[k][1]:.0f})"  # noqa: E731
        lines.append(f"| {label} | {size:.2f} | {cell('build')} | {cell('write')} | {cell('send')} | {cell('total')} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(args.write.read_text() + "\n" + text + "\n" if args.write.exists() else text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
