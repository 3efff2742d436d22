"""Out-of-distribution description: fitted on training spectra, stored in the model file."""
from __future__ import annotations

import numpy as np
import pytest

from core.spectral.ood import OodDescription, fit_ood, fit_ood_from_cubes, ood_distance, ood_mask
from core.spectral.chain import preprocess
from core.capture.synthetic.captures import generate_capture, small_profile
from core.capture.synthetic.frames import mosaic


@pytest.fixture(scope="module")
def trained():
    profile = small_profile(40, 60)
    items = []
    for seed in range(3):
        capture = generate_capture(seed=seed, profile=profile)
        from core.spectral.chain import preprocess_capture

        cube = preprocess_capture(capture.to_capture())
        items.append((cube.data, capture.labels, cube.valid))
    return fit_ood_from_cubes(items), profile


def test_distance_matches_the_direct_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6))
    y = rng.integers(1, 4, size=500)
    desc = fit_ood(x, y, percentile=99.0)
    cube = rng.normal(size=(4, 5, 6)).astype(np.float32)
    z = (cube.reshape(-1, 6) - desc.mean) @ desc.whitening
    direct = ((z[:, None, :] - desc.centres[None]) ** 2).sum(-1).min(-1).reshape(4, 5)
    np.testing.assert_allclose(ood_distance(desc, cube), direct, rtol=1e-4, atol=1e-3)
    # About 1 % of the training pixels lie above a 99th-percentile threshold.
    train = ood_distance(desc, x.reshape(1, -1, 6))
    assert 0.005 < (train > desc.threshold).mean() < 0.02


def test_synthetic_brain_capture_is_mostly_in_distribution(trained):
    desc, profile = trained
    from core.spectral.chain import preprocess_capture

    cube = preprocess_capture(generate_capture(seed=9, profile=profile).to_capture())
    assert ood_mask(desc, cube)[cube.valid].mean() < 0.1


def _scene(profile, reflectance):
    """Frames of a scene of ``reflectance (H, W, B)`` as the camera sees it (inverse SCM, mosaic)."""
    h, w, b = reflectance.shape
    seen = (reflectance.reshape(-1, b) @ np.linalg.inv(profile.scm.astype(np.float64)).T).reshape(h, w, b)
    rows, cols = profile.sensor_shape
    dark = np.full((rows, cols), 50, np.uint16)
    white = dark + 900
    raw = dark.astype(np.float64)
    raw[: 5 * h, : 5 * w] += 900 * np.clip(mosaic(seen, profile.pattern_wh), 0, 1.05)
    return preprocess(np.rint(raw).astype(np.uint16), dark, white, profile)


def test_non_brain_scene_is_mostly_out_of_distribution(trained):
    """Vegetation (red edge), blue and red paint, a slope: materials with no place in brain tissue."""
    desc, profile = trained
    h, w, b = profile.cube_shape
    nm = np.linspace(665, 960, b)
    materials = [
        0.05 + 0.5 / (1 + np.exp(-(nm - 715) / 8)),  # leaf: dark red, bright NIR
        0.6 - 0.5 * (nm - 665) / 295,  # falling slope
        0.2 + 0.6 * (nm > 800),  # a step
        0.4 + 0.3 * np.sin(nm / 15.0),  # a dye with narrow features
    ]
    reflectance = np.empty((h, w, b))
    for i, spectrum in enumerate(materials):
        reflectance[:, i * w // 4 : (i + 1) * w // 4] = spectrum
    cube = _scene(profile, reflectance)
    assert ood_mask(desc, cube)[cube.valid].mean() > 0.9


def test_invalid_pixels_are_never_out_of_distribution(trained):
    desc, profile = trained
    data = np.random.default_rng(1).normal(size=(4, 4, 25)).astype(np.float32)
    valid = np.zeros((4, 4), bool)

    class Cube:
        pass

    cube = Cube()
    cube.data, cube.valid = data, valid
    assert not ood_mask(desc, cube).any() and ood_mask(desc, data).any()


def test_description_round_trips_and_bad_ones_are_refused(trained):
    desc, _ = trained
    again = OodDescription.from_dict(desc.to_dict(), n_bands=25, n_classes=5)
    np.testing.assert_array_equal(again.whitening, desc.whitening)
    assert again.threshold == desc.threshold
    bad = desc.to_dict() | {"threshold": float("nan")}
    with pytest.raises(ValueError, match="NaN"):
        OodDescription.from_dict(bad)
    with pytest.raises(ValueError, match="describes 25 bands, the model has 16"):
        OodDescription.from_dict(desc.to_dict(), n_bands=16)
    with pytest.raises(ValueError, match="unknown format"):
        OodDescription.from_dict({"format": "pickle"})


def test_ood_for_model_uses_the_file_description(trained):
    from dataclasses import dataclass

    from core.spectral.ood import ood_for_model

    desc, profile = trained

    @dataclass
    class Info:  # the two fields ood_for_model reads from a ModelInfo
        ood: dict | None
        sha256: str
        n_bands: int = 25

    from core.spectral.chain import preprocess_capture

    cube = preprocess_capture(generate_capture(seed=12, profile=profile).to_capture())
    result = ood_for_model(Info(desc.to_dict(), "a" * 64), cube)
    assert result.available and result.mask.shape == cube.valid.shape
    assert result.fraction == pytest.approx(result.mask.sum() / cube.valid.sum())
    missing = ood_for_model(Info(None, "b" * 64), cube)
    assert not missing.available and missing.mask is None and "unavailable" in missing.message


def test_pixels_not_measured_are_neither_flagged_nor_counted(trained):
    from dataclasses import dataclass

    from core.spectral.ood import ood_for_model

    desc, _ = trained

    @dataclass
    class Info:
        ood: dict | None
        sha256: str
        n_bands: int = 25

    class Cube:
        pass

    cube = Cube()
    cube.data = np.random.default_rng(2).normal(size=(4, 5, 25)).astype(np.float32)  # nothing like brain
    cube.valid = np.ones((4, 5), bool)
    everything = ood_for_model(Info(desc.to_dict(), "c" * 64), cube)
    assert everything.mask.all() and everything.fraction == 1.0
    clipped = np.zeros((4, 5), bool)
    clipped[:, :4] = True  # 16 of 20 pixels clipped: not classified, so not judged either
    result = ood_for_model(Info(desc.to_dict(), "c" * 64), cube, not_measured=clipped)
    assert not result.mask[clipped].any() and result.mask[~clipped].all()
    assert result.fraction == 1.0  # 4 of the 4 classified pixels, not 4 of 20
