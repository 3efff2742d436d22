"""``neurohsi demo-data``, ``demo-capture`` and ``import-nemesis`` as a user runs them (real subprocesses)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from core.capture.files import load_capture, write_frame
from core.dataset.folders import read_dataset
from core.labels.maps import read_label_png
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.cli import assert_one_line_error, neurohsi


def test_demo_data_small_writes_a_readable_dataset(tmp_path):
    out = tmp_path / "demo"
    result = neurohsi("demo-data", out, "--small", "--captures", 15, "--seed", 4)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["profile"] == "synthetic-small"
    ids = [c["capture_id"] for c in summary["captures"]]
    assert len(ids) == len(set(ids)) == 15
    # 13 thesis patients, then the first two again as their second capture.
    assert ids[:2] == ["ID0018C01", "ID0025C01"] and ids[-2:] == ["ID0018C02", "ID0025C02"]
    assert "[15/15]" in result.stderr
    items = read_dataset(out)
    assert sorted(ids) == [i.capture_id for i in items]
    by_id = {i.capture_id: i for i in items}
    assert by_id["ID0047C02"].patient == "ID47C2" and by_id["ID0018C02"].patient == "ID18"
    assert all(i.meta["source"] == "synthetic" for i in items)
    assert by_id["ID0030C01"].load_labels().shape == (40, 60)
    # Seeded: the same command writes the same frames.
    again = neurohsi("demo-data", tmp_path / "again", "--small", "--captures", 1, "--seed", 4)
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(
        read_dataset(tmp_path / "again")[0].load_capture().raw, by_id["ID0018C01"].load_capture().raw
    )


def test_demo_capture_prints_the_raw_path(tmp_path):
    result = neurohsi("demo-capture", tmp_path / "demo", "--seed", 1)
    assert result.returncode == 0, result.stderr
    raw_path = result.stdout.strip()
    assert raw_path == str(tmp_path / "demo" / "ID0001C01.tif")
    capture = load_capture(raw_path)  # references found by the NEMESIS naming convention
    assert capture.raw.shape == (1088, 2048) and capture.raw.dtype == np.uint16
    assert capture.metadata.filter_size_wh == (2045, 1085)
    labels = read_label_png(tmp_path / "demo" / "ID0001C01_labels.png")
    assert labels.shape == (217, 409) and set(np.unique(labels)) == {0, 1, 2, 3, 4, 5}


def test_import_nemesis_command(tmp_path):
    src = tmp_path / "nemesis"
    src.mkdir()
    capture = generate_capture(seed=7, patient="ID50", profile=small_profile())
    write_frame(src / "ID0050C01.tif", capture.raw, capture.metadata)
    write_frame(src / "ID0050CD01.tif", capture.dark, capture.metadata)
    write_frame(src / "ID0050CW01.tif", capture.white, capture.metadata)
    codes = np.array([400, 101, 200, 300, 302, 320], dtype=np.uint16)[capture.labels]
    scipy.io.savemat(src / "SNAPgtID0050C01_cropped_Pre-processed.mat", {"groundTruthMap": codes})
    result = neurohsi("import-nemesis", src, tmp_path / "DATASET")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [i["capture_id"] for i in summary["imported"]] == ["ID0050C01"]
    (item,) = read_dataset(tmp_path / "DATASET")
    np.testing.assert_array_equal(item.load_labels(), capture.labels)
    assert item.meta["source"] == "nemesis" and item.patient == "ID0050"


@pytest.mark.parametrize("command", ["demo-data", "demo-capture", "import-nemesis"])
def test_help(command):
    result = neurohsi(command, "--help")
    assert result.returncode == 0 and "usage: neurohsi " + command in result.stdout


def test_bad_inputs_give_one_line(tmp_path):
    assert_one_line_error(neurohsi("demo-data", tmp_path / "d", "--captures", 0), "--captures must be >= 1")
    assert_one_line_error(neurohsi("demo-data", tmp_path / "d", "--seed", -2, "--small"), "--seed")
    (tmp_path / "file").write_text("x")
    assert_one_line_error(neurohsi("demo-data", tmp_path / "file", "--small"), str(tmp_path / "file"), "not a folder")
    assert_one_line_error(neurohsi("demo-capture", tmp_path / "file"), str(tmp_path / "file"), "not a folder")
    assert_one_line_error(neurohsi("import-nemesis", tmp_path / "none", tmp_path / "out"), "none", "not found")
    src = tmp_path / "nemesis"
    src.mkdir()
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "out"), "no NEMESIS files")
    capture = generate_capture(seed=1, profile=small_profile())
    write_frame(src / "ID0018C01.tif", capture.raw, capture.metadata)
    write_frame(src / "ID0018CD01.tif", capture.dark, capture.metadata)
    (src / "SNAPgtID0018C01_cropped_Pre-processed.mat").write_bytes(b"\x00" * 10)
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "out"), "ID0018C01.tif", "white reference")
    write_frame(src / "ID0018CW01.tif", capture.white, capture.metadata)
    assert_one_line_error(
        neurohsi("import-nemesis", src, tmp_path / "out"), "SNAPgtID0018C01_cropped_Pre-processed.mat", "MATLAB"
    )
