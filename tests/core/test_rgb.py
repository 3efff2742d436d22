"""Synthetic RGB for display: band choice by wavelength, percentile stretch, invalid pixels black."""
from __future__ import annotations

import numpy as np
import pytest

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile
from core.spectral.chain import Cube, preprocess
from core.spectral.rgb import DEFAULT_RGB_INDEX, choose_rgb_bands, synthetic_rgb


@pytest.fixture(scope="module")
def thesis_cube() -> Cube:
    rng = np.random.default_rng(4)
    shape = (1085, 2045)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1023, size=shape, dtype=np.uint16)
    raw = rng.integers(100, 600, size=shape, dtype=np.uint16)
    white[50:55, 100:105] = dark[50:55, 100:105]  # cube pixel (10, 20) invalid
    white[0, 2044] = 0  # cube pixel (0, 408) invalid
    return preprocess(raw, dark, white, load_profile(THESIS_PROFILE_ID))


def test_cube_to_uint8_rgb_with_invalid_pixels_black(thesis_cube):
    rgb = synthetic_rgb(thesis_cube)
    assert rgb.dtype == np.uint8 and rgb.shape == (217, 409, 3)
    assert not thesis_cube.valid[10, 20] and not thesis_cube.valid[0, 408]
    assert (rgb[~thesis_cube.valid] == 0).all()
    valid = rgb[thesis_cube.valid]
    # The 1..99 percentile stretch spans (almost) the whole range in every channel.
    assert (valid.max(axis=0) == 255).all() and (valid.min(axis=0) == 0).all()
    assert np.median(valid) > 20


def test_bands_chosen_by_wavelength_or_index():
    thesis = np.asarray(load_profile(THESIS_PROFILE_ID).wavelengths_nm)
    red, green, blue = choose_rgb_bands(thesis, 25)
    assert abs(thesis[red] - 850) < 7 and abs(thesis[green] - 750) < 7 and abs(thesis[blue] - 670) < 7
    assert choose_rgb_bands(None, 25) == DEFAULT_RGB_INDEX
    assert choose_rgb_bands(None, 8) == (7, 7, 0)  # indices clipped to the bands there are
    with pytest.raises(ValueError, match="3 wavelengths given for a cube of 25 bands"):
        choose_rgb_bands([1.0, 2.0, 3.0], 25)


def test_array_input_uses_mask_and_stretches_each_channel():
    h, w, b = 20, 30, 25
    ramp = np.linspace(0.0, 1.0, h * w, dtype=np.float32).reshape(h, w)
    data = np.repeat(ramp[..., None], b, axis=-1)
    data[..., 0] *= 100.0  # channel scale must not matter after the stretch
    valid = np.ones((h, w), dtype=bool)
    valid[:2] = False
    data[:2] = 5.0  # bright but invalid: must come out black, and must not shift the stretch
    rgb = synthetic_rgb(data, valid=valid, gamma=1.0, percentiles=(0.0, 100.0))
    assert (rgb[:2] == 0).all()
    # With (0, 100) percentiles and gamma 1 each channel maps the valid range linearly onto 0..255.
    expected = np.round((ramp - ramp[2:].min()) / (ramp.max() - ramp[2:].min()) * 255)
    for channel in range(3):
        np.testing.assert_allclose(rgb[2:, :, channel], expected[2:], atol=1)


def test_nan_and_constant_channels_do_not_break_the_image():
    data = np.ones((10, 12, 25), dtype=np.float32)
    data[3, 4] = np.nan
    rgb = synthetic_rgb(data)
    assert rgb.dtype == np.uint8 and (rgb[3, 4] == 0).all()
    assert synthetic_rgb(data, valid=np.zeros((10, 12), bool)).max() == 0


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match=r"\(H, W, B\)"):
        synthetic_rgb(np.zeros((10, 12)))
    with pytest.raises(ValueError, match="valid mask shape"):
        synthetic_rgb(np.zeros((10, 12, 25)), valid=np.ones((12, 10), bool))
