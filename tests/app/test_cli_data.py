"""``neurohsi info`` and ``neurohsi preprocess`` as a user runs them: a real subprocess, real files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.capture.files import frame_to_bytes, write_frame
from core.capture.metadata import CaptureMetadata
from tests.support.cli import assert_one_line_error, neurohsi

THESIS_META = CaptureMetadata(
    camera_model="MQ022HG-IM-SM5X5-NIR",
    serial="CAMAU1234",
    exposure_us=40000.0,
    filter_offset_xy=(0, 0),
    filter_size_wh=(2045, 1085),
    pattern_wh=(5, 5),
    wavelengths_nm=tuple(665.0 + 12.29 * i for i in range(25)),
)


def triplet(folder, shape=(1088, 2048), *, prefix="ID0001", metadata=THESIS_META, seed=0):
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1023, size=shape, dtype=np.uint16)
    raw = rng.integers(100, 600, size=shape, dtype=np.uint16)
    raw_path = write_frame(folder / f"{prefix}C01.tif", raw, metadata)
    write_frame(folder / f"{prefix}CD01.tif", dark, metadata)
    write_frame(folder / f"{prefix}CW01.tif", white, metadata)
    return raw_path


# --- success paths ---------------------------------------------------------------------------------


def test_info_prints_metadata_json(tmp_path):
    raw = triplet(tmp_path)
    result = neurohsi("info", raw)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["capture_id"] == "ID0001C01"
    assert info["shape"] == [1088, 2048] and info["dtype"] == "uint16"
    assert info["metadata"]["camera_model"] == "MQ022HG-IM-SM5X5-NIR"
    assert info["metadata"]["filter_size_wh"] == [2045, 1085]
    assert info["references"]["dark"].endswith("ID0001CD01.tif")


def test_info_without_references_still_succeeds(tmp_path):
    raw = write_frame(tmp_path / "alone.tif", np.ones((10, 12), dtype=np.uint8))
    result = neurohsi("info", raw)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["metadata"] is None and "cannot find references" in info["references"]["error"]


def test_preprocess_writes_cube_and_rgb(tmp_path):
    raw = triplet(tmp_path)
    out, png = tmp_path / "cube.npy", tmp_path / "rgb.png"
    result = neurohsi("preprocess", raw, "-o", out, "--rgb", png)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["shape"] == [217, 409, 25] and summary["profile"] == "thesis-sm5x5-nir"
    assert summary["valid_pixels"] == 217 * 409
    cube = np.load(out)
    assert cube.dtype == np.float32 and cube.shape == (217, 409, 25) and np.isfinite(cube).all()
    image = np.asarray(Image.open(png))
    assert image.dtype == np.uint8 and image.shape == (217, 409, 3) and image.max() > 0


def test_preprocess_with_explicit_references_profile_and_odd_output_name(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    out = tmp_path / "cube.data"  # not .npy: written under exactly this name
    result = neurohsi(
        "preprocess", raw, "--dark", tmp_path / "ID0001CD01.tif", "--white", tmp_path / "ID0001CW01.tif",
        "--profile", "thesis-sm5x5-nir", "-o", out,
    )
    assert result.returncode == 0, result.stderr
    assert out.is_file() and np.load(out).shape == (217, 409, 25)


def test_preprocess_reports_white_not_above_dark_in_the_mask(tmp_path):
    shape = (1085, 2045)
    dark = np.full(shape, 40, dtype=np.uint16)
    white = np.full(shape, 900, dtype=np.uint16)
    white[:5, :5] = 30  # one dead pattern
    write_frame(tmp_path / "ID0002C01.tif", np.full(shape, 300, dtype=np.uint16))
    write_frame(tmp_path / "ID0002CD01.tif", dark)
    write_frame(tmp_path / "ID0002CW01.tif", white)
    out = tmp_path / "cube.npy"
    result = neurohsi("preprocess", tmp_path / "ID0002C01.tif", "-o", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["invalid_pixels"] == 1
    cube = np.load(out)
    assert np.isfinite(cube).all() and (cube[0, 0] == 0).all()


@pytest.mark.parametrize("command", [[], ["info"], ["preprocess"]])
def test_help(command):
    result = neurohsi(*command, "--help")
    assert result.returncode == 0 and "usage: neurohsi" in result.stdout


# --- bad input: one stderr line naming the file and the problem --------------------------------------


def test_not_a_tiff(tmp_path):
    bad = tmp_path / "ID0009C01.tif"
    bad.write_text("hello")
    assert_one_line_error(neurohsi("info", bad), "ID0009C01.tif", "not a TIFF")
    assert_one_line_error(neurohsi("preprocess", bad, "-o", tmp_path / "c.npy"), "ID0009C01.tif", "not a TIFF")


@pytest.mark.parametrize("keep_bytes", [4, 8, 5000])
def test_truncated_tiff(tmp_path, keep_bytes):
    bad = tmp_path / "cut.tif"
    bad.write_bytes(frame_to_bytes(np.ones((100, 100), dtype=np.uint16))[:keep_bytes])
    line = assert_one_line_error(neurohsi("info", bad), "cut.tif")
    assert "truncated or corrupt" in line or "holds no image" in line


def test_3d_tiff(tmp_path):
    bad = tmp_path / "cube.tif"
    tifffile.imwrite(bad, np.zeros((3, 20, 30), dtype=np.uint16), photometric="minisblack", planarconfig="separate")
    assert_one_line_error(neurohsi("info", bad), "cube.tif", "expected a 2-D frame")


def test_float_tiff(tmp_path):
    bad = tmp_path / "float.tif"
    tifffile.imwrite(bad, np.zeros((20, 30), dtype=np.float32))
    assert_one_line_error(neurohsi("info", bad), "float.tif", "unsupported pixel type float32")


def test_references_of_another_shape(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    write_frame(tmp_path / "ID0001CD01.tif", np.zeros((1088, 2048), dtype=np.uint16))
    assert_one_line_error(
        neurohsi("preprocess", raw, "-o", tmp_path / "c.npy"), "ID0001CD01.tif", "dark reference shape (1088, 2048)"
    )


def test_frame_too_small(tmp_path):
    raw = triplet(tmp_path, shape=(500, 600), metadata=None)
    assert_one_line_error(neurohsi("preprocess", raw, "-o", tmp_path / "c.npy"), "ID0001C01.tif", "too small")


def test_unknown_profile(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    assert_one_line_error(
        neurohsi("preprocess", raw, "--profile", "hyper-9000", "-o", tmp_path / "c.npy"),
        "ID0001C01.tif",
        "unknown camera profile 'hyper-9000'",
    )


def test_missing_reference(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    (tmp_path / "ID0001CW01.tif").unlink()
    assert_one_line_error(
        neurohsi("preprocess", raw, "-o", tmp_path / "c.npy"), "ID0001C01.tif", "white reference ID0001CW01.tif not found"
    )


def test_missing_raw_file(tmp_path):
    assert_one_line_error(neurohsi("preprocess", tmp_path / "ID0404C01.tif", "-o", tmp_path / "c.npy"),
                          "ID0404C01.tif", "file not found")


def test_dark_without_white(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    assert_one_line_error(
        neurohsi("preprocess", raw, "--dark", tmp_path / "ID0001CD01.tif", "-o", tmp_path / "c.npy"), "--white"
    )


def test_output_folder_missing(tmp_path):
    raw = triplet(tmp_path, shape=(1085, 2045), metadata=None)
    assert_one_line_error(neurohsi("preprocess", raw, "-o", tmp_path / "no" / "c.npy"), "no/c.npy")
