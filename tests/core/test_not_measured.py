"""Not-measured pixels (clipped raw, no tissue) are never classified; one legend model for all views."""
from __future__ import annotations

import glob
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch

from core.capture.synthetic.captures import generate_capture, small_profile
from core.model.files import load_model, save_model
from core.model.inference import classify_prepared, prepare
from core.model.network import Conv2DNet
from core.model.trust import flags_from_header, summary, to_header
from core.output.legend import flag_layers, flag_rgba, legend_rows, make_layer
from core.spectral.chain import clipped_pixels
from core.spectral.tissue import TEXTURE_STD, not_tissue_pixels, texture

# The real patients of ../shared/data (beside the checkout, as on the build and CI machines; never shipped).
NEMESIS = sorted(glob.glob(str(Path(__file__).resolve().parents[3] / "shared" / "data" / "nemesis-public" / "*_dataset.mat")))


@pytest.fixture(scope="module")
def synthetic():
    return generate_capture(seed=3, profile=small_profile(40, 60))


@pytest.fixture(scope="module")
def model(tmp_path_factory, synthetic):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    profile_id = prepare(synthetic.to_capture()).cube.profile_id
    save_model(path, Conv2DNet(25, 5), name="unit", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id=profile_id)
    return load_model(path)


def _band_stripe(synthetic, band: int, cols: slice, value: int | None = None):
    """The capture with pattern position ``band`` set to full scale (or ``value``) over cube columns ``cols``."""
    capture = synthetic.to_capture()
    raw = capture.raw.copy()
    pw, ph = synthetic.profile.pattern_wh
    (ox, oy) = synthetic.profile.offset_xy
    h, w, _ = synthetic.profile.cube_shape
    r, c = band // pw, band % pw
    cube_cols = np.arange(w)[cols]
    frame_cols = ox + pw * cube_cols + c
    rows = oy + ph * np.arange(h) + r
    raw[np.ix_(rows, frame_cols)] = 1023 if value is None else value
    return replace(capture, raw=raw), cube_cols


def test_clipped_pixels_reduces_each_pattern():
    raw = np.full((10, 15), 500, np.uint16)
    dark = np.full((10, 15), 50, np.uint16)
    raw[6, 4] = 1023  # cube pixel (1, 0) saturated in one band
    raw[2, 13] = 50  # cube pixel (0, 2) at the dark level in one band
    expected = np.zeros((2, 3), bool)
    expected[1, 0] = expected[0, 2] = True
    np.testing.assert_array_equal(clipped_pixels(raw, dark, (5, 5), full_scale=1023), expected)
    with pytest.raises(ValueError):
        clipped_pixels(raw, dark[:5], (5, 5))


def test_saturated_band_is_not_classified(synthetic, model):
    capture, cols = _band_stripe(synthetic, band=7, cols=slice(10, 22))
    result = classify_prepared(prepare(capture), model)
    share = len(cols) / result.labels.shape[1]
    assert result.masked_fraction >= share - 1e-9
    assert (result.labels[:, cols] == 0).all() and result.masked_mask[:, cols].all()
    assert (result.probabilities[:, cols] == 0).all()
    assert (result.labels[:, :10] > 0).all()  # the rest is classified
    assert summary(result)["masked_fraction"] == pytest.approx(result.masked_fraction, abs=1e-6)


def test_band_at_dark_level_is_not_classified(synthetic, model):
    capture, cols = _band_stripe(synthetic, band=0, cols=slice(0, 5), value=0)
    result = classify_prepared(prepare(capture), model)
    assert (result.labels[:, cols] == 0).all() and result.masked_fraction >= len(cols) / result.labels.shape[1]


@pytest.mark.parametrize("kind", ["one value", "grey card"])
def test_featureless_frames_are_unusable_with_every_pixel_flagged(synthetic, model, kind):
    capture = synthetic.to_capture()
    if kind == "one value":
        raw = np.full_like(capture.raw, 500)
    else:
        raw = np.rint(capture.dark + 0.5 * (capture.white.astype(float) - capture.dark)).astype(np.uint16)
    prepared = prepare(replace(capture, raw=raw))
    assert prepared.quality.status == "unusable"
    assert any(c.code == "featureless" and c.severity == "unusable" for c in prepared.quality.checks)
    result = classify_prepared(prepared, model)
    assert result.masked_fraction == 1.0 and not result.labels.any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_demo_captures_are_never_featureless(seed):
    full = seed == 0  # one full thesis-sized capture, the rest small (fast)
    synthetic = generate_capture(seed=seed, patient=("ID1", "ID18", "ID25", "ID8")[seed],
                                 profile=None if full else small_profile(40, 60))
    prepared = prepare(synthetic.to_capture())
    check = next(c for c in prepared.quality.checks if c.code == "featureless")
    assert check.severity == "ok" and prepared.quality.status != "unusable"
    assert not prepared.not_measured.any()


def _real_tissue_spectra() -> list[tuple[str, np.ndarray]]:
    """(name, spectra float32 (N, 25)): every real patient's class means and spectra drawn from the real
    per-class statistics (resources/spectra/class_spectra.json, shipped); plus the real NEMESIS files'
    spectra where ../shared is beside the checkout (the build and CI machines)."""
    from scipy.io import loadmat

    from core.capture.synthetic.statistics import class_stats

    rng = np.random.default_rng(0)
    found = []
    for class_id, stats in class_stats().items():
        drawn = stats.mean + rng.standard_normal((2000, stats.mean.size)) @ stats.chol.T
        spectra = np.vstack([drawn, np.array(list(stats.per_patient.values()))])
        spectra /= np.sqrt(np.mean(spectra**2, axis=1, keepdims=True))  # RMS-normalised, as the chain leaves them
        found.append((f"class {class_id} statistics", spectra.astype(np.float32)))
    found += [(Path(path).name, loadmat(path)["data"].astype(np.float32)) for path in NEMESIS]
    return found


def test_real_tissue_spectra_are_tissue_like():
    sources = _real_tissue_spectra()
    assert len(sources) >= 5
    for name, spectra in sources:
        data = spectra[:, None, :]  # (N, 1, 25) as a one-column cube
        valid = np.ones(data.shape[:2], bool)
        assert not not_tissue_pixels(data, valid).any(), name
        assert texture(data, valid) > 2 * TEXTURE_STD, name


def test_legend_rows_share_out_every_pixel_once():
    labels = np.array([[1, 1, 2, 2], [0, 0, 1, 2]], np.uint8)
    masked = labels == 0
    ood = np.zeros_like(masked)
    ood[:, 0] = True  # overlaps a masked pixel: counted once, as not measured
    rows = legend_rows(labels, (1, 2), ("healthy", "tumour"), flags=[make_layer("ood", ood), make_layer("masked", masked)],
                       hidden={2})
    by_key = {row.key: row for row in rows}
    assert [row.key for row in rows] == [1, 2, "masked", "ood"]
    assert by_key["masked"].fraction == 2 / 8 and by_key["ood"].fraction == 1 / 8
    assert by_key[1].fraction == 2 / 8 and by_key[2].fraction == 3 / 8
    assert sum(row.fraction for row in rows) == pytest.approx(1.0)
    assert by_key[2].hidden and "(hidden)" in by_key[2].text() and not by_key[1].hidden


def test_flag_layers_draw_and_travel_through_the_header():
    labels = np.ones((6, 8), np.uint8)
    masked = np.zeros((6, 8), bool)
    masked[:, :2] = True
    uncertain = np.zeros((6, 8), bool)
    uncertain[4:] = True

    class Result:
        quality = None
        ood_mask = ood_fraction = None
        masked_mask, masked_fraction = masked, 0.25
        uncertain_mask, uncertain_fraction = uncertain, 2 / 6

    layers = flag_layers(Result)
    assert [layer.key for layer in layers] == ["masked", "uncertain"]
    drawn = flag_rgba(layers, labels.shape)
    assert (drawn[masked, 3] == 255).all() and (drawn[~masked & ~uncertain, 3] == 0).all()
    back = flags_from_header(to_header(Result), labels.shape)
    np.testing.assert_array_equal(back["masked_mask"], masked)
    np.testing.assert_array_equal(back["uncertain_mask"], uncertain)
    assert back["masked_fraction"] == 0.25
    with pytest.raises(ValueError):
        flags_from_header({"masked_fraction": 2}, labels.shape)


@pytest.mark.parametrize("pattern_wh", [(5, 5), (4, 3)])
def test_clipped_pixels_equals_the_plain_reduction(pattern_wh):
    """The strided-OR reduction against the obvious one, on random frames with extra rows and columns."""
    pw, ph = pattern_wh
    rng = np.random.default_rng(7)
    h, w = 9, 11
    raw = rng.integers(0, 1024, size=(ph * h + 2, pw * w + 3)).astype(np.uint16)
    dark = rng.integers(0, 60, size=raw.shape).astype(np.uint16)
    raw[rng.random(raw.shape) < 0.01] = 1023
    bad = (raw >= 1023) | (raw <= dark)
    expected = bad[: ph * h, : pw * w].reshape(h, ph, w, pw).any(axis=(1, 3))
    got = clipped_pixels(raw, dark, pattern_wh, full_scale=1023)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(got, expected)
