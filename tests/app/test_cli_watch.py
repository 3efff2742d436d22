"""``neurohsi watch`` in a real subprocess: one JSON line per capture written into the folder, stopped by SIGINT."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.capture.files import frame_to_bytes
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.cli import assert_one_line_error, neurohsi
from tests.support.gui import write_model
from tests.support.live_writer import write_progressively, write_whole

REPO = Path(__file__).resolve().parents[2]


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


def _next(lines: queue.Queue, predicate, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            continue
        if predicate(line):
            return line
    raise AssertionError("expected line never came")


def _start(watch: Path, *args) -> tuple[subprocess.Popen, queue.Queue, queue.Queue]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "watch", str(watch), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    stdout, stderr = queue.Queue(), queue.Queue()
    for stream, into in ((proc.stdout, stdout), (proc.stderr, stderr)):
        threading.Thread(target=_lines, args=(stream, into), daemon=True).start()
    return proc, stdout, stderr


def test_watch_prints_one_json_line_per_capture_until_sigint(tmp_path):
    synthetic = generate_capture(seed=11, profile=small_profile(24, 32))
    watch, out = tmp_path / "watch", tmp_path / "out"
    watch.mkdir()
    out.mkdir()
    write_whole(watch / "ID0011CD01.tif", frame_to_bytes(synthetic.dark, synthetic.metadata))
    first = write_whole(watch / "ID0011CW01.tif", frame_to_bytes(synthetic.white, synthetic.metadata))
    write_whole(watch / "ID0011C01.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))  # there before: not new
    model = write_model(tmp_path / "m.safetensors", watch / "ID0011C01.tif")
    assert first.exists()

    proc, stdout, stderr = _start(watch, "--model", model, "--out", out)
    try:
        _next(stderr, lambda line: line.startswith("neurohsi: watching "))
        raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
        write_progressively(watch / "ID0011C02.tif", raw, pause_s=0.03)
        first_line = json.loads(_next(stdout, lambda line: True))
        write_whole(watch / "ID0011C03.tif", raw)
        second_line = json.loads(_next(stdout, lambda line: True))
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [first_line["capture_id"], second_line["capture_id"]] == ["ID0011C02", "ID0011C03"]
    assert stdout.empty()  # nothing else on stdout: one line per capture
    for line in (first_line, second_line):
        assert line["model"]["name"] == "gui-test" and line["source"] == "local" and line["fallback_reason"] is None
        assert abs(sum(line["classes_percent"].values()) - 100.0) < 0.1
        assert {"read", "preprocess", "infer", "total", "file_to_map"} <= set(line["timings_ms"])
        assert "rgb" not in line["timings_ms"]  # watch shows no image: no synthetic RGB made
        assert line["quality"]["status"] in ("ok", "warning") and line["skipped_total"] == 0
        assert Path(line["outputs"]["map"]).is_file() and Path(line["outputs"]["npz"]).is_file()
    rest = []
    while not stderr.empty():
        rest.append(stderr.get())
    assert rest[-1] == "neurohsi: stopped watching: 2 classified, 0 skipped"
    assert not any("Traceback" in line for line in rest)


def test_watch_errors_are_one_line(tmp_path):
    assert_one_line_error(neurohsi("watch", tmp_path / "missing"), "folder to watch not found")
    assert_one_line_error(neurohsi("watch", tmp_path, "--model", tmp_path / "none.safetensors"), "model file not found")


def test_gui_watch_checks_the_folder_first(tmp_path):
    assert_one_line_error(neurohsi("gui", "--watch", tmp_path / "missing"), "folder to watch not found")
    assert_one_line_error(neurohsi("gui", tmp_path / "ID0001C01.tif", "--watch", tmp_path), "not both")


def test_watch_with_a_dead_endpoint_falls_back_per_capture(tmp_path):
    import socket

    synthetic = generate_capture(seed=12, profile=small_profile(24, 32))
    watch = tmp_path / "watch"
    watch.mkdir()
    write_whole(watch / "ID0012CD01.tif", frame_to_bytes(synthetic.dark, synthetic.metadata))
    write_whole(watch / "ID0012CW01.tif", frame_to_bytes(synthetic.white, synthetic.metadata))
    raw = write_whole(watch / "ID0012C01.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))
    model = write_model(tmp_path / "m.safetensors", raw)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/score"
    proc, stdout, stderr = _start(watch, "--model", model, "--endpoint", url, "--fallback-local")
    try:
        _next(stderr, lambda line: line.startswith("neurohsi: watching "))
        write_whole(watch / "ID0012C02.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))
        line = json.loads(_next(stdout, lambda line: True))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert line["capture_id"] == "ID0012C02" and line["source"] == "local"
    assert "cannot reach" in line["fallback_reason"] and url.split("/score")[0] in line["fallback_reason"]


def test_when_maps_wait_only_the_newest_gets_its_files_and_every_map_its_line(tmp_path):
    """The main thread's output writing (~85 ms a map) must not let results pile up behind it."""
    from app.cli.watch_commands import report_batch
    from core.capture.files import Capture
    from core.model.inference import prepare
    from core.model.live import LiveResult, local_classifier
    from core.model.files import load_model

    synthetic = generate_capture(seed=4, profile=small_profile(24, 32))
    raw_path = tmp_path / "ID0001C01.tif"
    write_whole(raw_path, frame_to_bytes(synthetic.raw, synthetic.metadata))
    write_whole(tmp_path / "ID0001CD01.tif", frame_to_bytes(synthetic.dark, synthetic.metadata))
    write_whole(tmp_path / "ID0001CW01.tif", frame_to_bytes(synthetic.white, synthetic.metadata))
    model = load_model(write_model(tmp_path / "m.safetensors", raw_path))
    classify = local_classifier(model)
    batch = []
    for n in (1, 2, 3):
        capture = Capture(synthetic.raw, synthetic.dark, synthetic.white, synthetic.metadata,
                          tmp_path / f"ID0001C{n:02d}.tif", None, None, f"ID0001C{n:02d}")
        prepared = prepare(capture)
        batch.append(("result", LiveResult(prepared, classify(prepared)[0], None, 0.0, 0.05, 0)))
    batch.insert(1, ("error", "ID0001C09: broken"))
    out = tmp_path / "out"
    out.mkdir()
    lines = list(report_batch(batch, out=out, palette="thesis"))
    assert [stream is sys.stdout for _, stream in lines] == [True, False, True, True]
    records = [json.loads(line) for line, stream in lines if stream is sys.stdout]
    assert [r["capture_id"] for r in records] == ["ID0001C01", "ID0001C02", "ID0001C03"]
    assert [r.get("outputs_skipped", False) for r in records] == [True, True, False]
    assert sorted(p.name for p in out.iterdir()) == ["ID0001C03.npz", "ID0001C03_map.png"]
    assert lines[1][0] == "neurohsi: warning: ID0001C09: broken"
    alone = [json.loads(line) for line, _ in report_batch(batch[:1], out=None, palette="thesis")]
    assert "outputs_skipped" not in alone[0]  # nothing asked to be written: nothing skipped


def test_watch_lines_carry_quality_and_unusable_captures_get_no_files(tmp_path):
    """A saturated frame and one whose exposure differs from the references: the same checks as opening
    them alone, in every line; the unusable one writes nothing to --out unless --force."""
    from dataclasses import replace

    import numpy as np

    from app.cli.watch_commands import report_batch
    from core.capture.source import WatchedFolder
    from core.model.files import load_model
    from core.model.inference import prepare
    from core.model.live import LiveResult, local_classifier

    synthetic = generate_capture(seed=4, profile=small_profile(24, 32))
    other = replace(synthetic.metadata, exposure_us=(synthetic.metadata.exposure_us or 41000) + 9000)
    watch = tmp_path / "watch"
    watch.mkdir()
    write_whole(watch / "ID0001CD01.tif", frame_to_bytes(synthetic.dark, synthetic.metadata))
    write_whole(watch / "ID0001CW01.tif", frame_to_bytes(synthetic.white, synthetic.metadata))
    source = WatchedFolder(watch, settle_s=0.0)
    source.poll()  # the references
    captures = {}
    for name, frame, meta in (("ID0001C01", synthetic.raw, other),
                              ("ID0001C02", np.full_like(synthetic.raw, 1023), synthetic.metadata)):
        write_whole(watch / f"{name}.tif", frame_to_bytes(frame, meta))
        for _ in range(100):
            captures.update({e.capture.capture_id: e.capture for e in source.poll() if hasattr(e, "capture")})
            if name in captures:
                break
            time.sleep(0.02)
    assert set(captures) == {"ID0001C01", "ID0001C02"}
    classify = local_classifier(load_model(write_model(tmp_path / "m.safetensors", watch / "ID0001C01.tif")))
    results = {}
    for cid, capture in captures.items():
        prepared = prepare(capture)
        results[cid] = LiveResult(prepared, classify(prepared)[0], None, 0.0, 0.05, 0)
    out = tmp_path / "out"
    out.mkdir()
    mismatched = json.loads(next(report_batch([("result", results["ID0001C01"])], out=out, palette="thesis"))[0])
    assert mismatched["quality_status"] == "warning" and any("exposure" in w for w in mismatched["warnings"])
    saturated = json.loads(next(report_batch([("result", results["ID0001C02"])], out=out, palette="thesis"))[0])
    assert saturated["quality_status"] == "unusable" and "saturated" in saturated["outputs_withheld"]
    assert sorted(p.name for p in out.iterdir()) == ["ID0001C01.npz", "ID0001C01_map.png"]
    forced = json.loads(next(report_batch([("result", results["ID0001C02"])], out=out, palette="thesis", force=True))[0])
    assert "outputs_withheld" not in forced and (out / "ID0001C02_map.png").exists()
