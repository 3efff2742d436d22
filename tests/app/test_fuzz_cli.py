"""Fuzz suite, the command line as a user runs it (real subprocesses): the second pass's findings give
one line naming the file and the problem, a non-zero exit, no traceback, bounded memory (issue 26)."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io

from core.capture.files import write_frame
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.cli import assert_one_line_error, neurohsi
from tests.support.fuzz import with_scaled_weights, write
from tests.support.scoring import profile_id_of, save_random_model, small_capture, write_capture

MiB = 2**20


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(raw path, model path) of a small synthetic capture and a random model made for it."""
    folder = tmp_path_factory.mktemp("fuzz-cli")
    capture = small_capture(9)
    raw = write_capture(folder, capture)
    model = save_random_model(folder / "m.safetensors", profile_id=profile_id_of(capture))
    return raw, folder / "m.safetensors", model


def _nemesis_folder(folder, ground_truth: dict):
    folder.mkdir()
    capture = generate_capture(seed=7, patient="ID50", profile=small_profile())
    write_frame(folder / "ID0050C01.tif", capture.raw, capture.metadata)
    write_frame(folder / "ID0050CD01.tif", capture.dark, capture.metadata)
    write_frame(folder / "ID0050CW01.tif", capture.white, capture.metadata)
    gt = folder / "SNAPgtID0050C01_cropped_Pre-processed.mat"
    scipy.io.savemat(gt, ground_truth, do_compression=True)
    return gt


def _run_measured(*args) -> tuple[subprocess.CompletedProcess, int]:
    """``neurohsi ARGS`` in a subprocess and the peak RSS of its process, sampled every 20 ms."""
    import psutil

    process = subprocess.Popen([sys.executable, "-m", "app.cli.main", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), peak


def test_import_nemesis_with_a_huge_declared_mat_stays_small(tmp_path):
    gt = _nemesis_folder(tmp_path / "nemesis", {"groundTruthMap": np.zeros((20000, 20000), np.uint8)})
    result, peak = _run_measured("import-nemesis", tmp_path / "nemesis", tmp_path / "out")
    assert_one_line_error(result, gt.name, "refused before reading")
    # Before the fix: 3.9 GB. The CLI process with numpy and scipy loaded is ~150 MB.
    assert peak < 400 * MiB, peak / MiB


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"groundTruthMap": np.zeros((40, 60), np.uint16)}, "labels no pixel (all zero)"),
        ({"groundTruthMap": np.random.default_rng(0).choice([101, 400], (300, 300)).astype(float)}, "readable MATLAB"),
    ],
)
def test_import_nemesis_bad_ground_truth_is_one_line(tmp_path, content, fragment):
    gt = _nemesis_folder(tmp_path / "nemesis", content)
    if fragment == "readable MATLAB":  # corrupt zlib past the variable's header
        data = bytearray(gt.read_bytes())
        data[-40:-20] = bytes(20)
        gt.write_bytes(bytes(data))
    assert_one_line_error(neurohsi("import-nemesis", tmp_path / "nemesis", tmp_path / "out"), gt.name, fragment)


def test_a_huge_crop_offsets_value_is_not_echoed(tmp_path):
    _nemesis_folder(tmp_path / "nemesis", {"groundTruthMap": np.full((40, 60), 101, np.uint16)})
    value = "o" * 100_000 + ".json"  # a single argument may hold 128 KB on Linux
    result = neurohsi("import-nemesis", tmp_path / "nemesis", tmp_path / "out", "--crop-offsets", value)
    line = assert_one_line_error(result, "characters cut")
    assert len(line) < 800


def test_weights_times_1e37_exit_non_zero_with_one_line(tmp_path, small):
    raw, model, _ = small
    broken = write(tmp_path / "broken.safetensors", with_scaled_weights(model.read_bytes(), 1e37))
    result = neurohsi("classify", raw, "--model", broken)
    assert_one_line_error(result, "broken.safetensors", "non-finite probabilities")
    assert "Warning" not in result.stderr and not result.stdout


def test_ansi_escapes_in_a_model_name_do_not_reach_the_terminal(tmp_path, small):
    raw, _, info = small
    evil = tmp_path / "evil.safetensors"
    save_random_model(evil, profile_id=info.profile_id, name="evil\x1b[2J\x1b[31mred\x07")
    result = neurohsi("classify", raw, "--model", evil)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil\\x1b[2J\\x1b[31mred\\x07" in result.stdout


def test_serve_refuses_a_model_for_a_camera_that_does_not_exist(tmp_path):
    model = tmp_path / "other-camera.safetensors"
    save_random_model(model, profile_id="no-such-camera")
    result = neurohsi("serve", "--model", model, "--port", "0", timeout=60)
    assert_one_line_error(result, "other-camera.safetensors", "camera profile 'no-such-camera', which does not exist")
    assert "NeuroHSI scoring service:" not in result.stdout  # refused before the banner
