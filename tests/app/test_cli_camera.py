"""``neurohsi info`` / ``preprocess`` on files in the exact structure real xiAPI cameras write."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.support.cli import assert_one_line_error, neurohsi
from tests.support.ximea import REAL_POSITION_WAVELENGTHS, write_real_frame


def real_triplet(folder, shape=(1088, 2048), **xml):
    rng = np.random.default_rng(0)
    dark = rng.integers(20, 60, size=shape, dtype=np.uint16)
    white = rng.integers(700, 1000, size=shape, dtype=np.uint16)
    raw = ((dark.astype(np.int32) + white) // 2).astype(np.uint16)
    xml.setdefault("active_wh", (shape[1], shape[0]))
    for name, frame in (("ID0007C01", raw), ("ID0007CD01", dark), ("ID0007CW01", white)):
        write_real_frame(folder / f"{name}.tif", frame, **xml)
    return folder / "ID0007C01.tif"


def test_info_shows_every_field_of_a_real_file(tmp_path):
    result = neurohsi("info", real_triplet(tmp_path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    meta = info["metadata"]
    assert meta["camera_model"] == "MQ022HG-IM-SM5X5-NIR" and meta["serial"] == "CAMAU1912007"
    assert meta["exposure_us"] == 40000 and meta["gain_db"] == 0 and meta["temperature_c"] == 38.25
    assert meta["acquisition_time"] == "2019-05-02T11:20:33.123"
    assert meta["active_area_wh"] == [2048, 1088] and meta["absolute_offset_xy"] == [0, 0]
    assert meta["filter_offset_xy"] == [0, 0] and meta["filter_size_wh"] == [2045, 1085] and meta["pattern_wh"] == [5, 5]
    assert meta["spectral_range_nm"] == [665, 960] and meta["wavelengths_nm"] == list(REAL_POSITION_WAVELENGTHS)
    assert meta["api_context"]["xiApiPar:ImageDataFormat"] == "XI_RAW16"
    profile = info["profile"]
    assert profile["id"] == "thesis-sm5x5-nir" and profile["wavelengths_nominal"] is False
    assert "metadata" in profile["geometry_source"] and "thesis-sm5x5-nir" in profile["geometry_source"]
    assert info["quality"]["status"] == "ok"


def test_preprocess_npz_holds_cube_valid_and_wavelengths(tmp_path):
    out = tmp_path / "cube.npz"
    result = neurohsi("preprocess", real_triplet(tmp_path), "-o", out)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    with np.load(out) as npz:
        assert npz["cube"].shape == (217, 409, 25) and npz["valid"].dtype == bool and npz["valid"].all()
        np.testing.assert_allclose(npz["wavelengths_nm"], summary["wavelengths_nm"], rtol=1e-6)
    assert summary["wavelengths_nominal"] is False and summary["quality"]["status"] == "ok"
    # Band 0 comes from pattern position 20 through the thesis SCM.
    assert summary["wavelengths_nm"][0] == pytest.approx(REAL_POSITION_WAVELENGTHS[20])


def test_preprocess_npy_writes_a_sidecar(tmp_path):
    out = tmp_path / "cube.npy"
    result = neurohsi("preprocess", real_triplet(tmp_path), "-o", out)
    assert result.returncode == 0, result.stderr
    side = json.loads((tmp_path / "cube.npy.json").read_text())
    assert len(side["wavelengths_nm"]) == 25 and side["profile"] == "thesis-sm5x5-nir" and np.load(out).shape[2] == 25


def test_region_of_interest_file_preprocesses(tmp_path):
    out = tmp_path / "roi.npz"
    raw = real_triplet(tmp_path, shape=(1024, 2048), absolute_xy=(0, 32))
    result = neurohsi("preprocess", raw, "-o", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["shape"] == [204, 409, 25] and json.loads(result.stdout)["origin_rc"] == [7, 0]


def test_frame_cut_after_capture_is_one_line(tmp_path):
    raw = real_triplet(tmp_path, shape=(1000, 2048), active_wh=(2048, 1088))
    assert_one_line_error(neurohsi("info", raw), "ID0007C01.tif", "1000x2048", "ActiveArea is 1088x2048")


@pytest.mark.parametrize("pattern", [(100, 100), (300, 300)])
def test_crafted_pattern_size_is_one_line(tmp_path, pattern):
    raw = real_triplet(tmp_path, shape=(64, 64), pattern_wh=pattern)
    assert_one_line_error(neurohsi("preprocess", raw, "-o", tmp_path / "c.npz"), "ID0007C01.tif", f"mosaic pattern {pattern[0]}x{pattern[1]}")
