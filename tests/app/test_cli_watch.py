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

from core.capture_io import frame_to_bytes
from core.synthetic import generate_capture, small_profile
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

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "watch", str(watch), "--model", str(model), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    stdout, stderr = queue.Queue(), queue.Queue()
    for stream, into in ((proc.stdout, stdout), (proc.stderr, stderr)):
        threading.Thread(target=_lines, args=(stream, into), daemon=True).start()
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
        assert line["quality"] is None and line["skipped_total"] == 0
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
