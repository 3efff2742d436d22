"""``neurohsi classify`` end to end on a small synthetic capture, and its one-line errors."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli.main import main
from core.capture.files import write_frame
from core.model.network import Conv2DNet
from core.model.files import save_model
from core.output.render import RESEARCH_NOTICE
from core.capture.synthetic.captures import SMALL_PROFILE_ID, generate_capture, small_profile

NAMES = ("Healthy tissue", "Tumour", "Venous blood", "Arterial blood", "Dura mater")


@pytest.fixture(scope="module")
def synthetic():
    return generate_capture(seed=3, profile=small_profile())


@pytest.fixture
def raw_path(tmp_path, synthetic):
    path = write_frame(tmp_path / "ID0018C01.tif", synthetic.raw, synthetic.metadata)
    write_frame(tmp_path / "ID0018CD01.tif", synthetic.dark, synthetic.metadata)
    write_frame(tmp_path / "ID0018CW01.tif", synthetic.white, synthetic.metadata)
    return path


def _model(path, *, n_bands=25, profile_id=SMALL_PROFILE_ID, seed=0):
    torch.manual_seed(seed)
    save_model(path, Conv2DNet(n_bands=n_bands), name="cli-test", version="7", class_ids=(1, 2, 3, 4, 5),
               class_names=NAMES, profile_id=profile_id)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_writes_map_overlay_npz_and_json(tmp_path, raw_path, capsys, synthetic):
    model = _model(tmp_path / "m.safetensors")
    out_map, out_overlay, out_npz = tmp_path / "map.png", tmp_path / "overlay.png", tmp_path / "out.npz"
    code, out, err = _run(
        capsys, "classify", raw_path, "--model", model, "-o", out_map, "--overlay", out_overlay, "--npz", out_npz, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    h, w = synthetic.truth.shape
    assert summary["shape"] == [h, w]
    assert summary["model"]["name"] == "cli-test" and summary["model"]["version"] == "7"
    import hashlib

    assert summary["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert set(summary["timings_ms"]) >= {"read", "preprocess", "infer", "total"}
    assert abs(sum(summary["classes_percent"].values()) - 100.0) < 0.1

    with np.load(out_npz) as npz:
        labels, probs = npz["labels"], npz["probabilities"]
        assert labels.dtype == np.uint8 and labels.shape == (h, w)
        assert probs.dtype == np.float32 and probs.shape == (h, w, 5)
        np.testing.assert_array_equal(npz["class_ids"], [1, 2, 3, 4, 5])
    valid = labels > 0
    np.testing.assert_array_equal(labels[valid], probs[valid].argmax(-1) + 1)
    from core.capture.files import capture_id_for
    from core.output.export import read_npz

    stored = read_npz(out_npz)  # the one NPZ layout, with model identity and capture id
    assert stored["capture_id"] == capture_id_for(raw_path) and stored["model_sha256"] == summary["model"]["sha256"]
    assert stored["classified_at"] == summary["classified_at"]

    with Image.open(out_map) as image:  # palette PNG: pixel values are the class ids
        assert image.mode == "P" and image.size == (w, h)
        np.testing.assert_array_equal(np.asarray(image), labels)
        assert image.convert("RGB").getpixel((0, 0)) == tuple(image.getpalette()[3 * labels[0, 0] : 3 * labels[0, 0] + 3])
    with Image.open(out_overlay) as image:
        assert image.mode == "RGB" and image.width > w and image.height > h
    assert RESEARCH_NOTICE in summary["notice"]


def test_classify_plain_output_is_one_line(tmp_path, raw_path, capsys):
    code, out, err = _run(capsys, "classify", raw_path, "--model", _model(tmp_path / "m.safetensors"))
    assert code == 0 and err == ""
    assert len(out.strip().splitlines()) == 1 and "cli-test v7" in out


def _expect_one_line_error(capsys, fragment, *argv):
    code, out, err = _run(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurohsi: error:"), err
    assert "Traceback" not in err
    assert fragment in lines[0], lines[0]
    return lines[0]


def test_missing_model_file(tmp_path, raw_path, capsys):
    line = _expect_one_line_error(capsys, "model file not found", "classify", raw_path, "--model", tmp_path / "none.safetensors")
    assert "none.safetensors" in line


def test_corrupt_model_file(tmp_path, raw_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 40)
    _expect_one_line_error(capsys, "not a safetensors file", "classify", raw_path, "--model", bad)


def test_non_neurohsi_safetensors(tmp_path, raw_path, capsys):
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, other)
    _expect_one_line_error(capsys, "not a NeuroHSI model", "classify", raw_path, "--model", other)


def test_pickle_model_file(tmp_path, raw_path, capsys):
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"conv.weight": [1, 2, 3]}))
    _expect_one_line_error(capsys, "pickle", "classify", raw_path, "--model", evil)


def test_model_for_another_band_count(tmp_path, raw_path, capsys):
    model = _model(tmp_path / "b16.safetensors", n_bands=16)
    _expect_one_line_error(capsys, "trained on 16 bands, but the capture has 25", "classify", raw_path, "--model", model)


def test_model_for_another_camera_profile(tmp_path, raw_path, capsys):
    model = _model(tmp_path / "thesis.safetensors", profile_id="thesis-sm5x5-nir")
    _expect_one_line_error(capsys, "camera profile 'thesis-sm5x5-nir'", "classify", raw_path, "--model", model)


def test_missing_raw_file(tmp_path, capsys):
    _expect_one_line_error(capsys, "file not found", "classify", tmp_path / "ID0001C01.tif", "--model", _model(tmp_path / "m.safetensors"))


def test_dark_without_white(tmp_path, raw_path, capsys):
    _expect_one_line_error(capsys, "--dark and --white", "classify", raw_path, "--dark", raw_path)


def test_output_folder_missing(tmp_path, raw_path, capsys):
    _expect_one_line_error(
        capsys, "does not exist", "classify", raw_path, "--model", _model(tmp_path / "m.safetensors"), "-o", tmp_path / "no" / "map.png"
    )


def test_missing_demo_model_says_how_to_build_it(tmp_path, raw_path, capsys, monkeypatch):
    import resources

    monkeypatch.setattr(resources, "DEMO_MODEL_PATH", tmp_path / "demo.safetensors")
    _expect_one_line_error(capsys, "make demo-model", "classify", raw_path)


def test_unreachable_endpoint_without_and_with_fallback(tmp_path, raw_path, capsys):
    import socket

    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/score"
    model = _model(tmp_path / "m.safetensors")
    line = _expect_one_line_error(capsys, "remote scoring at", "classify", raw_path, "--model", model, "--endpoint", url)
    assert "--fallback-local" in line
    code, out, err = _run(capsys, "classify", raw_path, "--model", model, "--endpoint", url, "--fallback-local", "--json")
    assert code == 0
    assert err.count("\n") == 1 and "remote scoring failed" in err and "classified locally" in err
    assert json.loads(out)["source"] == "local"


def test_key_env_must_be_set(tmp_path, raw_path, capsys, monkeypatch):
    monkeypatch.delenv("NEUROHSI_TEST_KEY", raising=False)
    _expect_one_line_error(
        capsys, "NEUROHSI_TEST_KEY", "classify", raw_path, "--endpoint", "http://127.0.0.1:9/score", "--key-env", "NEUROHSI_TEST_KEY"
    )


@pytest.mark.slow
def test_classify_on_a_real_local_endpoint_with_key(tmp_path, raw_path, capsys, monkeypatch):
    """The remote branch against the real scoring service on 127.0.0.1: same map as local, endpoint named."""
    from remote.scoring_server import local_scoring_server

    model = _model(tmp_path / "m.safetensors")
    monkeypatch.setenv("NEUROHSI_TEST_KEY", "s3cret-key")
    with local_scoring_server(model, key="s3cret-key") as url:
        code, out, err = _run(capsys, "classify", raw_path, "--endpoint", url, "--key-env", "NEUROHSI_TEST_KEY",
                              "--npz", tmp_path / "remote.npz", "--overlay", tmp_path / "overlay.png", "--json")
        assert code == 0, err
        remote = json.loads(out)
        monkeypatch.setenv("NEUROHSI_TEST_KEY", "wrong-key")
        line = _expect_one_line_error(capsys, "remote scoring at", "classify", raw_path, "--endpoint", url,
                                      "--key-env", "NEUROHSI_TEST_KEY")
        assert "s3cret" not in line and "wrong-key" not in line
    assert remote["source"] == url and remote["model"]["name"] == "cli-test"
    code, out, err = _run(capsys, "classify", raw_path, "--model", model, "--npz", tmp_path / "local.npz")
    assert code == 0, err
    with np.load(tmp_path / "remote.npz") as r, np.load(tmp_path / "local.npz") as loc:
        np.testing.assert_array_equal(r["labels"], loc["labels"])
    assert (tmp_path / "overlay.png").stat().st_size > 0
