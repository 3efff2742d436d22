"""The vectorised preprocessing chain against a plain per-pixel float64 version of the thesis equations.

The reference below loops over pixels and bands exactly as thesis section 3.1.2 reads:
calibrate ``(raw - dark) / (white - dark)``, take ``cube[R, C, b] = cal[oy + 5R + b // 5, ox + 5C + b % 5]``,
apply ``SCM @ spectrum``, divide by ``sqrt(mean(s ** 2))``. A pixel whose pattern has ``white <= dark``
anywhere, or whose corrected spectrum has RMS 0, is invalid (mask False, spectrum exactly 0).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.capture.camera_profiles import (
    THESIS_PROFILE_ID,
    CameraProfile,
    band_wavelengths,
    load_profile,
    profile_from_metadata,
)
from core.errors import CaptureError
from core.capture.metadata import CaptureMetadata
from core.spectral.chain import (
    Cube,
    calibrate,
    calibrated_cube,
    form_cube,
    preprocess,
    rms_normalise,
    spectral_correction,
)

TOLERANCE = 1e-5


def reference_pixel(raw, dark, white, profile: CameraProfile, row: int, col: int) -> np.ndarray | None:
    """The thesis chain for one cube pixel in float64 Python; ``None`` when the pixel is invalid."""
    pw, ph = profile.pattern_wh
    ox, oy = profile.offset_xy
    n = pw * ph
    spectrum = []
    for b in range(n):
        y = oy + ph * row + b // pw
        x = ox + pw * col + b % pw
        denominator = float(white[y, x]) - float(dark[y, x])
        if denominator <= 0:
            return None
        spectrum.append((float(raw[y, x]) - float(dark[y, x])) / denominator)
    scm = profile.scm.astype(np.float64)
    corrected = [sum(float(scm[i, j]) * spectrum[j] for j in range(n)) for i in range(n)]
    rms = math.sqrt(sum(v * v for v in corrected) / n)
    if rms == 0:
        return None
    return np.array([v / rms for v in corrected])


def reference_chain(raw, dark, white, profile: CameraProfile) -> tuple[np.ndarray, np.ndarray]:
    """``(cube float64 (H, W, B), valid bool (H, W))`` by looping over every pixel."""
    h, w, b = profile.cube_shape
    cube = np.zeros((h, w, b))
    valid = np.zeros((h, w), dtype=bool)
    for row in range(h):
        for col in range(w):
            spectrum = reference_pixel(raw, dark, white, profile, row, col)
            if spectrum is not None:
                cube[row, col] = spectrum
                valid[row, col] = True
    return cube, valid


def random_scm(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random, well-conditioned SCM shaped like a real one (strong diagonal, small cross-talk terms)."""
    sign = rng.choice([-1.0, 1.0])
    return (sign * np.eye(n) * rng.uniform(0.05, 2.0) + rng.normal(0.0, 0.02, size=(n, n))).astype(np.float32)


def random_frames(rng: np.random.Generator, shape, dtype, *, invalid_fraction: float, dead_patterns: int, profile):
    """raw/dark/white with some ``white <= dark`` pixels and some all-zero (raw == dark) patterns."""
    top = np.iinfo(dtype).max
    dark = rng.integers(0, top // 8, size=shape).astype(dtype)
    white = rng.integers(top // 2, top, size=shape).astype(dtype)
    # raw may fall below dark or above white: negative and >1 reflectance are legal inputs.
    raw = rng.integers(0, top, size=shape).astype(dtype)
    bad = rng.random(shape) < invalid_fraction
    white[bad] = dark[bad] - rng.integers(0, 2, size=int(bad.sum())).astype(dtype) * (dark[bad] > 0)
    h, w, _ = profile.cube_shape
    pw, ph = profile.pattern_wh
    ox, oy = profile.offset_xy
    for _ in range(dead_patterns):  # raw == dark over one whole pattern: spectrum 0, RMS 0
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
        window = (slice(oy + ph * r, oy + ph * (r + 1)), slice(ox + pw * c, ox + pw * (c + 1)))
        raw[window] = dark[window]
        white[window] = np.maximum(white[window], dark[window] + 1)
    return raw, dark, white


def check_against_reference(raw, dark, white, profile: CameraProfile) -> Cube:
    cube = preprocess(raw, dark, white, profile)
    expected, expected_valid = reference_chain(raw, dark, white, profile)
    assert cube.data.dtype == np.float32 and cube.data.shape == profile.cube_shape
    np.testing.assert_array_equal(cube.valid, expected_valid)
    assert np.isfinite(cube.data).all()
    np.testing.assert_allclose(cube.data, expected, rtol=0, atol=TOLERANCE)
    assert (cube.data[~cube.valid] == 0).all()
    return cube


geometry = st.fixed_dictionaries(
    {
        "h": st.integers(1, 5),
        "w": st.integers(1, 5),
        "extra_rows": st.integers(0, 6),
        "extra_cols": st.integers(0, 6),
        "dtype": st.sampled_from([np.uint8, np.uint16]),
        "seed": st.integers(0, 2**32 - 1),
        "invalid_fraction": st.sampled_from([0.0, 0.0, 0.01, 0.1]),
        "dead_patterns": st.integers(0, 2),
    }
)
FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(g=geometry)
def test_thesis_like_geometry_matches_per_pixel_loop(g):
    rng = np.random.default_rng(g["seed"])
    profile = CameraProfile(
        id="test-5x5",
        sensor_shape=(5 * g["h"], 5 * g["w"]),
        offset_xy=(0, 0),
        area_wh=(5 * g["w"], 5 * g["h"]),
        pattern_wh=(5, 5),
        wavelengths_nm=None,
        scm=random_scm(rng, 25),
    )
    shape = (5 * g["h"] + g["extra_rows"], 5 * g["w"] + g["extra_cols"])
    frames = random_frames(
        rng, shape, g["dtype"], invalid_fraction=g["invalid_fraction"], dead_patterns=g["dead_patterns"], profile=profile
    )
    check_against_reference(*frames, profile)


@FAST
@given(g=geometry, ox=st.integers(1, 9), oy=st.integers(1, 9))
def test_metadata_profile_with_offset_matches_per_pixel_loop(g, ox, oy):
    rng = np.random.default_rng(g["seed"])
    meta = CaptureMetadata(
        camera_model="TEST-CAM",
        filter_offset_xy=(ox, oy),
        # The area need not be a whole number of patterns: the remainder is ignored.
        filter_size_wh=(5 * g["w"] + g["extra_cols"] % 5, 5 * g["h"] + g["extra_rows"] % 5),
        pattern_wh=(5, 5),
        wavelengths_nm=tuple(600.0 + 10 * i for i in range(25)),
    )
    profile = profile_from_metadata(meta, scm=random_scm(rng, 25))
    assert profile.offset_xy == (ox, oy) and profile.cube_shape == (g["h"], g["w"], 25)
    shape = (oy + 5 * g["h"] + g["extra_rows"], ox + 5 * g["w"] + g["extra_cols"])
    frames = random_frames(
        rng, shape, g["dtype"], invalid_fraction=g["invalid_fraction"], dead_patterns=g["dead_patterns"], profile=profile
    )
    cube = check_against_reference(*frames, profile)
    np.testing.assert_array_equal(cube.wavelengths_nm, np.float32(band_wavelengths(profile.scm, meta.wavelengths_nm)))


@FAST
@given(seed=st.integers(0, 2**32 - 1), ox=st.integers(0, 3), oy=st.integers(0, 3))
def test_non_square_pattern_follows_band_order(seed, ox, oy):
    """A 4x2 mosaic: band b sits at pattern row b // 4, column b % 4."""
    rng = np.random.default_rng(seed)
    meta = CaptureMetadata(filter_offset_xy=(ox, oy), filter_size_wh=(12, 6), pattern_wh=(4, 2))
    profile = profile_from_metadata(meta, scm=random_scm(rng, 8))
    frames = random_frames(rng, (oy + 6, ox + 12), np.uint16, invalid_fraction=0.0, dead_patterns=0, profile=profile)
    check_against_reference(*frames, profile)


@pytest.fixture(scope="module")
def thesis_triplet():
    """A full-sensor 1088x2048 uint16 10-bit triplet with a few broken reference pixels."""
    rng = np.random.default_rng(7)
    shape = (1088, 2048)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1023, size=shape, dtype=np.uint16)
    raw = (dark + (white - dark) * rng.uniform(0.02, 0.98, size=shape)).astype(np.uint16)
    bad = rng.random(shape) < 1e-4  # about 220 dead reference pixels, each spoiling one cube pixel
    white[bad] = dark[bad]
    return raw, dark, white


def test_thesis_profile_matches_per_pixel_loop_on_sampled_pixels(thesis_triplet):
    raw, dark, white = thesis_triplet
    profile = load_profile(THESIS_PROFILE_ID)
    cube = preprocess(raw, dark, white, profile)
    assert cube.data.shape == (217, 409, 25) and cube.data.dtype == np.float32
    assert cube.valid.shape == (217, 409) and cube.valid.dtype == bool
    assert np.isfinite(cube.data).all()

    rng = np.random.default_rng(0)
    invalid = np.argwhere(~cube.valid)
    assert 100 < len(invalid) < 400  # the dead reference pixels were found
    corners = np.array([[0, 0], [0, 408], [216, 0], [216, 408]])
    sampled = np.stack([rng.integers(0, 217, 300), rng.integers(0, 409, 300)], axis=1)
    for row, col in np.concatenate([corners, sampled, invalid[:20]]):
        expected = reference_pixel(raw, dark, white, profile, row, col)
        if expected is None:
            assert not cube.valid[row, col]
            assert (cube.data[row, col] == 0).all()
        else:
            assert cube.valid[row, col]
            np.testing.assert_allclose(cube.data[row, col], expected, rtol=0, atol=TOLERANCE)


def test_thesis_profile_on_active_area_frame_equals_full_sensor(thesis_triplet):
    """The 1085x2045 active-area crop gives the same cube as the full sensor (offset (0, 0))."""
    profile = load_profile(THESIS_PROFILE_ID)
    full = preprocess(*thesis_triplet, profile)
    cropped = preprocess(*(f[:1085, :2045] for f in thesis_triplet), profile)
    assert cropped.data.shape == (217, 409, 25)
    np.testing.assert_array_equal(cropped.data, full.data)
    np.testing.assert_array_equal(cropped.valid, full.valid)


def test_uint8_frames_are_preprocessed_like_uint16():
    profile = load_profile(THESIS_PROFILE_ID)
    rng = np.random.default_rng(3)
    shape = (1085, 2045)
    dark = rng.integers(0, 20, size=shape, dtype=np.uint8)
    white = rng.integers(150, 255, size=shape, dtype=np.uint8)
    raw = rng.integers(20, 150, size=shape, dtype=np.uint8)
    as8 = preprocess(raw, dark, white, profile)
    as16 = preprocess(raw.astype(np.uint16), dark.astype(np.uint16), white.astype(np.uint16), profile)
    assert as8.data.shape == (217, 409, 25)
    np.testing.assert_array_equal(as8.data, as16.data)


def test_white_not_above_dark_is_masked_never_inf_or_nan():
    profile = load_profile(THESIS_PROFILE_ID)
    shape = (1085, 2045)
    dark = np.full(shape, 50, dtype=np.uint16)
    white = np.full(shape, 900, dtype=np.uint16)
    raw = np.full(shape, 400, dtype=np.uint16)
    white[0, 0] = 50  # white == dark: division by zero in the thesis code
    white[10, 10] = 10  # white < dark: negative reflectance scale
    raw[100:105, 200:205] = 50  # raw == dark over pattern (20, 40): spectrum 0, RMS 0
    cube = preprocess(raw, dark, white, profile)
    assert not cube.valid[0, 0] and not cube.valid[2, 2] and not cube.valid[20, 40]
    assert cube.valid.sum() == 217 * 409 - 3
    assert np.isfinite(cube.data).all() and np.isfinite(cube.brightness).all()
    assert (cube.data[~cube.valid] == 0).all() and (cube.brightness[~cube.valid] == 0).all()


def test_all_references_broken_gives_empty_mask_and_zero_cube():
    profile = load_profile(THESIS_PROFILE_ID)
    frame = np.full((1085, 2045), 300, dtype=np.uint16)
    cube = preprocess(frame, frame, frame, profile)
    assert not cube.valid.any()
    assert not cube.data.any()


def test_normalised_spectra_have_unit_rms():
    profile = load_profile(THESIS_PROFILE_ID)
    rng = np.random.default_rng(5)
    shape = (1085, 2045)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1023, size=shape, dtype=np.uint16)
    raw = rng.integers(100, 600, size=shape, dtype=np.uint16)
    cube = preprocess(raw, dark, white, profile)
    rms = np.sqrt(np.mean(cube.data.astype(np.float64) ** 2, axis=-1))
    np.testing.assert_allclose(rms[cube.valid], 1.0, atol=1e-5)
    np.testing.assert_array_equal(cube.wavelengths_nm, np.float32(profile.wavelengths_nm))
    assert cube.profile_id == THESIS_PROFILE_ID


def test_chain_steps_match_their_formulas():
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 1024, size=(10, 15)).astype(np.uint16)
    dark = rng.integers(0, 50, size=(10, 15)).astype(np.uint16)
    white = rng.integers(500, 1024, size=(10, 15)).astype(np.uint16)
    white[3, 4] = dark[3, 4]
    reflectance, defined = calibrate(raw, dark, white)
    assert reflectance.dtype == np.float32 and not defined[3, 4] and reflectance[3, 4] == 0
    expected = (raw.astype(float) - dark) / np.where(defined, white.astype(float) - dark, 1)
    np.testing.assert_allclose(reflectance[defined], expected[defined], rtol=1e-6)

    profile = CameraProfile("t", (10, 15), (0, 0), (15, 10), (5, 5), None, np.eye(25, dtype=np.float32))
    cube = form_cube(reflectance, profile)
    assert cube.shape == (2, 3, 25)
    assert cube[1, 2, 7] == reflectance[5 + 7 // 5, 10 + 7 % 5]
    # The fused calibrate+form step gives bit-identical numbers and the per-pattern mask.
    fused, pattern_ok = calibrated_cube(raw, dark, white, profile)
    np.testing.assert_array_equal(fused, cube)
    assert pattern_ok.tolist() == [[False, True, True], [True, True, True]]  # (3, 4) lies in pattern (0, 0)
    white[3, 4] = dark[3, 4] + 1
    np.testing.assert_array_equal(calibrated_cube(raw, dark, white, profile)[1], np.ones((2, 3), bool))
    white[3, 4] = dark[3, 4]

    scm = random_scm(rng, 25)
    corrected = spectral_correction(cube, scm)
    np.testing.assert_allclose(corrected[1, 2], scm.astype(float) @ cube[1, 2].astype(float), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="SCM shape"):
        spectral_correction(cube, np.eye(24, dtype=np.float32))

    normalised, rms, ok = rms_normalise(corrected.copy())
    np.testing.assert_allclose(rms[1, 2], np.sqrt(np.mean(corrected[1, 2].astype(float) ** 2)), rtol=1e-6)
    assert ok.all()
    with pytest.raises(ValueError, match="one shape"):
        calibrate(raw, dark[:5], white)


def test_frame_too_small_for_filter_area_names_the_frame():
    profile = load_profile(THESIS_PROFILE_ID)
    small = np.zeros((1000, 2045), dtype=np.uint16)
    with pytest.raises(CaptureError, match=r"^raw: frame 1000x2045 is too small for the filter area of profile thesis-sm5x5-nir"):
        preprocess(small, small, small, profile)


def test_reference_of_another_shape_names_the_reference():
    profile = load_profile(THESIS_PROFILE_ID)
    frame = np.ones((1085, 2045), dtype=np.uint16)
    with pytest.raises(CaptureError, match=r"^white: reference shape \(1088, 2048\) differs"):
        preprocess(frame, frame, np.ones((1088, 2048), dtype=np.uint16), profile)


@pytest.mark.parametrize("offset_xy", [(0, 0), (3, 2)])
def test_generated_capture_matches_per_pixel_loop(offset_xy):
    """Synthetic captures (vignetting, noise, thesis SCM) through the chain and through the loop agree."""
    from core.capture.camera_profiles import resolve_profile
    from core.capture.synthetic.captures import generate_capture, small_profile

    capture = generate_capture(seed=5, profile=small_profile(12, 16).with_offset(offset_xy))
    profile = resolve_profile(capture.metadata)  # what a reader of the files would use
    assert profile.offset_xy == offset_xy
    np.testing.assert_array_equal(profile.scm, load_profile(THESIS_PROFILE_ID).scm)
    cube = check_against_reference(capture.raw, capture.dark, capture.white, profile)
    assert cube.valid.mean() > 0.9
