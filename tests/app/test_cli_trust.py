"""``neurohsi classify`` and the trust checks: quality status, out-of-distribution share, --force."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile
from core.capture.files import write_frame
from core.output.export import read_npz
from core.capture.synthetic.captures import generate_capture
from core.capture.synthetic.frames import mosaic
from tests.support.cli import assert_one_line_error, neurohsi


@pytest.fixture(scope="module")
def brain():
    return generate_capture(seed=21, patient="ID18")  # full sensor, thesis profile


def write_triplet(folder, raw, dark, white, metadata):
    folder.mkdir(parents=True, exist_ok=True)
    write_frame(folder / "ID0042C01.tif", raw, metadata)
    write_frame(folder / "ID0042CD01.tif", dark, metadata)
    write_frame(folder / "ID0042CW01.tif", white, metadata)
    return folder / "ID0042C01.tif"


def test_good_capture_reports_ok_and_mostly_in_distribution(tmp_path, brain):
    raw = write_triplet(tmp_path, brain.raw, brain.dark, brain.white, brain.metadata)
    result = neurohsi("classify", raw, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["quality"]["status"] == "ok"
    assert {c["code"] for c in summary["quality"]["checks"]} >= {"saturated", "underexposed", "out_of_distribution"}
    assert summary["out_of_distribution_fraction"] < 0.1  # the demo model was trained on such captures
    assert summary["camera_profile"]["id"] == THESIS_PROFILE_ID


def test_saturated_capture_gives_no_map_by_default(tmp_path, brain):
    raw = write_triplet(tmp_path, np.full_like(brain.raw, 1023), brain.dark, brain.white, brain.metadata)
    out = tmp_path / "map.png"
    line = assert_one_line_error(neurohsi("classify", raw, "-o", out), "ID0042C01.tif", "capture unusable", "saturated")
    assert "--force" in line and not out.exists()


def test_forced_map_is_watermarked_in_every_export(tmp_path, brain):
    raw = write_triplet(tmp_path, np.full_like(brain.raw, 1023), brain.dark, brain.white, brain.metadata)
    files = {"-o": tmp_path / "map.png", "--overlay": tmp_path / "overlay.png", "--npz": tmp_path / "c.npz"}
    result = neurohsi("classify", raw, "--force", "--json", *[str(x) for pair in files.items() for x in pair])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["quality"]["status"] == "unusable"
    npz = read_npz(files["--npz"])
    assert json.loads(npz["quality"])["status"] == "unusable" and npz["ood_mask"].shape == npz["labels"].shape
    with Image.open(files["-o"]) as png:
        assert png.text["NeuroHSI-quality"].startswith("unusable:")
    overlay = np.asarray(Image.open(files["--overlay"]).convert("RGB")).astype(int)
    red = (overlay[..., 0] > 150) & (overlay[..., 1] < 80) & (overlay[..., 2] < 80)
    assert red.mean() > 0.02  # the watermark bands


def test_non_brain_scene_is_mostly_out_of_distribution(tmp_path, brain):
    """Leaves, paint and a slope in front of the camera: the map's pixels are flagged, with the mask in the NPZ."""
    profile = load_profile(THESIS_PROFILE_ID)
    h, w, b = profile.cube_shape
    nm = np.asarray(profile.wavelengths_nm)
    materials = [0.05 + 0.5 / (1 + np.exp(-(nm - 715) / 8)), 0.6 - 0.5 * (nm - 665) / 295, 0.2 + 0.6 * (nm > 800)]
    reflectance = np.empty((h, w, b))
    for i, spectrum in enumerate(materials):
        reflectance[:, i * w // 3 : (i + 1) * w // 3] = spectrum
    seen = (reflectance.reshape(-1, b) @ np.linalg.inv(profile.scm.astype(np.float64)).T).reshape(h, w, b)
    raw = brain.dark.astype(np.float64)
    span = brain.white.astype(np.float64) - brain.dark
    area = (slice(0, 5 * h), slice(0, 5 * w))
    raw[area] += np.clip(mosaic(seen, profile.pattern_wh), 0, 1.0) * span[area]
    path = write_triplet(tmp_path, np.rint(raw).astype(np.uint16), brain.dark, brain.white, brain.metadata)
    result = neurohsi("classify", path, "--json", "--npz", tmp_path / "c.npz")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["out_of_distribution_fraction"] > 0.5
    ood = [c for c in summary["quality"]["checks"] if c["code"] == "out_of_distribution"][0]
    assert ood["severity"] == "warning" and summary["quality"]["status"] == "warning"
    npz = read_npz(tmp_path / "c.npz")
    assert npz["ood_mask"].mean() > 0.5 and npz["ood_available"] is True
    assert json.loads(npz["camera_profile"])["id"] == THESIS_PROFILE_ID


def test_old_model_without_description_says_unavailable(tmp_path, brain):
    from tests.support.scoring import save_random_model

    model = tmp_path / "old.safetensors"
    save_random_model(model, profile_id=THESIS_PROFILE_ID)
    raw = write_triplet(tmp_path, brain.raw, brain.dark, brain.white, brain.metadata)
    result = neurohsi("classify", raw, "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["out_of_distribution_fraction"] is None
    assert any("out-of-distribution check unavailable" in c["message"] for c in summary["quality"]["checks"])


def test_saturated_band_is_reported_as_not_measured_with_label_0(tmp_path, brain):
    """One band at full scale over a stripe of columns: masked_fraction >= the stripe's share, label 0 there."""
    profile = load_profile(THESIS_PROFILE_ID)
    h, w, _ = profile.cube_shape
    (ox, oy), (pw, ph) = profile.offset_xy, profile.pattern_wh
    cols = np.arange(100, 160)
    raw = brain.raw.copy()
    raw[np.ix_(oy + ph * np.arange(h) + 2, ox + pw * cols + 3)] = 1023  # band 13 only
    path = write_triplet(tmp_path, raw, brain.dark, brain.white, brain.metadata)
    out = tmp_path / "map.png"
    result = neurohsi("classify", path, "--json", "-o", out, "--force")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["masked_fraction"] >= len(cols) / w - 1e-6  # rounded to 6 places
    assert summary["classes_percent"]["not measured"] >= 100 * len(cols) / w - 0.01
    assert abs(sum(summary["classes_percent"].values()) - 100.0) < 0.1
    with Image.open(out) as png:
        labels = np.asarray(png)
    assert (labels[:, cols] == 0).all() and (labels[:, :100] > 0).mean() > 0.99
