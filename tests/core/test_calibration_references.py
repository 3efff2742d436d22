"""Calibration references computed once per dark/white pair give bit-identical cubes; maps agree within
the stated tolerance across thread counts (tests/support/maps.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.capture.camera_profiles import CameraProfile
from core.capture.files import Capture
from core.errors import CaptureError
from core.model.inference import classify, classify_prepared, predict_dense, prepare
from core.model.live import dense_net, local_classifier
from core.model.network import Conv2DNet
from core.model.files import load_model, save_model
from core.spectral.chain import CalibrationCache, calibration_references, preprocess
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.maps import assert_maps_agree

FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _profile(rng, h: int, w: int, ox: int, oy: int) -> CameraProfile:
    scm = np.eye(25) + rng.normal(0, 0.05, (25, 25))
    return CameraProfile(id="t5x5", sensor_shape=(oy + 5 * h + 3, ox + 5 * w + 3), offset_xy=(ox, oy),
                         area_wh=(5 * w, 5 * h), pattern_wh=(5, 5), wavelengths_nm=None, scm=scm)


def _frames(rng, shape, dtype, broken: float):
    top = 255 if dtype == np.uint8 else 1023
    dark = rng.integers(0, top // 8, size=shape).astype(dtype)
    white = rng.integers(top // 2, top, size=shape).astype(dtype)
    raw = rng.integers(0, top, size=shape).astype(dtype)
    if broken:  # white <= dark here: undefined pixels, the masked path
        bad = rng.random(shape) < broken
        white[bad] = dark[bad]
    return raw, dark, white


def _assert_same_cube(a, b) -> None:
    for field in ("data", "valid", "brightness", "clipped"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), field  # bit for bit (0.0 vs -0.0 too)
    assert a.origin_rc == b.origin_rc


@FAST
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 4), w=st.integers(1, 4), ox=st.integers(0, 6),
       oy=st.integers(0, 6), dtype=st.sampled_from([np.uint8, np.uint16]), broken=st.sampled_from([0.0, 0.01, 0.2]),
       roi=st.booleans())
def test_precomputed_references_give_the_same_bits_as_preprocessing_without(seed, h, w, ox, oy, dtype, broken, roi):
    rng = np.random.default_rng(seed)
    profile = _profile(rng, h, w, ox, oy)
    offset = (int(rng.integers(0, 8)), int(rng.integers(0, 8))) if roi else None
    shape = profile.sensor_shape if offset is None else (profile.sensor_shape[0] - offset[1], profile.sensor_shape[1] - offset[0])
    raw, dark, white = _frames(rng, shape, dtype, broken)
    try:
        plain = preprocess(raw, dark, white, profile, frame_offset_xy=offset)
    except CaptureError:  # an ROI that holds no whole pattern: the cached path says the same
        with pytest.raises(CaptureError):
            calibration_references(dark, white, profile, frame_offset_xy=offset)
        return
    refs = calibration_references(dark, white, profile, frame_offset_xy=offset)
    assert refs.all_defined == (broken == 0.0 or bool(refs.defined.all()))
    _assert_same_cube(preprocess(raw, dark, white, profile, frame_offset_xy=offset, references=refs), plain)
    raw2 = _frames(rng, shape, dtype, 0.0)[0]  # a second capture against the same pair
    _assert_same_cube(preprocess(raw2, dark, white, profile, frame_offset_xy=offset, references=refs),
                      preprocess(raw2, dark, white, profile, frame_offset_xy=offset))
    # In bands of rows on several threads (a single capture on every core): the same bits.
    for threads in (2, 3, 5):
        _assert_same_cube(preprocess(raw, dark, white, profile, frame_offset_xy=offset, threads=threads), plain)
        _assert_same_cube(preprocess(raw2, dark, white, profile, frame_offset_xy=offset, references=refs,
                                     threads=threads),
                          preprocess(raw2, dark, white, profile, frame_offset_xy=offset))


def test_a_capture_prepared_and_classified_on_every_core_gives_the_one_thread_map(capture_and_model):
    capture, model = capture_and_model
    one = prepare(capture, threads=1)
    every = prepare(capture, threads=2)
    _assert_same_cube(every.cube, one.cube)
    assert np.array_equal(every.rgb, one.rgb) and np.array_equal(every.not_measured, one.not_measured)
    assert every.quality == one.quality
    a, b = classify_prepared(one, model, threads=1), classify_prepared(every, model, threads=2)
    assert_maps_agree(a.probabilities, a.labels, b.probabilities, b.labels)
    for name in ("ood_mask", "masked_mask"):  # from the cube alone: the same bits
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # From the probabilities (within 1e-6 across thread counts): the same but at the threshold's near-ties.
    assert (a.uncertain_mask != b.uncertain_mask).mean() < 1e-3
    assert a.quality.status == b.quality.status
    assert {"preprocess", "rgb", "quality", "infer", "ood", "total"} <= set(b.timings_s)


def test_references_of_other_frames_profile_or_offset_are_refused():
    rng = np.random.default_rng(1)
    profile = _profile(rng, 2, 3, 1, 2)
    raw, dark, white = _frames(rng, profile.sensor_shape, np.uint16, 0.0)
    refs = calibration_references(dark, white, profile)
    with pytest.raises(ValueError, match="other frames"):
        preprocess(raw, dark.copy(), white, profile, references=refs)  # equal values, another frame object
    with pytest.raises(ValueError, match="other frames"):
        preprocess(raw, dark, white, dataclasses.replace(profile, id="other"),
                   references=refs)
    with pytest.raises(ValueError, match="other frames"):
        preprocess(raw, dark, white, profile, frame_offset_xy=(0, 0), references=refs)
    assert not refs.denominator.flags.writeable and not refs.pattern_ok.flags.writeable


def test_cache_computes_once_per_pair_and_keeps_the_last_two():
    rng = np.random.default_rng(2)
    profile = _profile(rng, 2, 2, 0, 0)
    pairs = [_frames(rng, profile.sensor_shape, np.uint16, 0.0)[1:] for _ in range(3)]
    cache = CalibrationCache(size=2)
    first = cache.get(*pairs[0], profile)
    assert cache.get(*pairs[0], profile) is first and (cache.hits, cache.misses) == (1, 1)
    cache.get(*pairs[1], profile)
    cache.get(*pairs[2], profile)  # the first pair falls out
    assert cache.get(*pairs[0], profile) is not first and cache.misses == 4
    with pytest.raises(ValueError):
        CalibrationCache(size=0)


@pytest.fixture(scope="module")
def capture_and_model(tmp_path_factory):
    synthetic = generate_capture(seed=3, profile=small_profile(24, 32))
    path = tmp_path_factory.mktemp("calib-model") / "m.safetensors"
    torch.manual_seed(1)
    save_model(path, Conv2DNet(25, 5), name="calib-test", class_ids=(1, 2, 3, 4, 5),
               class_names=tuple("abcde"), profile_id=prepare(synthetic.to_capture()).cube.profile_id)
    return synthetic.to_capture(), load_model(path)


def test_live_classifier_with_cached_references_equals_single_capture_classify(capture_and_model):
    """Live: 1 torch thread, dense twin made once, cached references; single capture: every core, none cached."""
    capture, model = capture_and_model
    expected = classify(capture, model)
    cache, live = CalibrationCache(), local_classifier(model)
    for raw in (capture.raw, capture.raw[::-1].copy()):  # two captures against one pair
        other = Capture(raw, capture.dark, capture.white, capture.metadata, None, None, None, "c")
        result, reason = live(prepare(other, references=cache))
        single = expected if raw is capture.raw else classify(other, model)
        assert reason is None
        # Live runs 1 torch thread, classify every core: the convolution sums may differ in the last bit.
        assert_maps_agree(result.probabilities, result.labels, single.probabilities, single.labels)
        assert np.array_equal(result.rgb, single.rgb)  # no torch in the RGB: bit for bit
        assert result.quality == single.quality and result.ood_fraction == single.ood_fraction
    assert (cache.hits, cache.misses) == (1, 1)


def test_maps_do_not_depend_on_the_torch_thread_count(capture_and_model):
    """A cube whose size makes torch split its work differently on 1 and 2 threads (as full maps do):
    the same map within the tolerance, and the same thread count gives the same bits."""
    _, model = capture_and_model
    cube = np.random.default_rng(4).normal(0, 1, (97, 131, 25)).astype(np.float32)
    before = torch.get_num_threads()
    try:
        runs = [predict_dense(dense_net(model), cube, class_ids=model.info.class_ids, threads=n) for n in (1, 2, 1)]
    finally:
        torch.set_num_threads(before)
    assert_maps_agree(runs[1][0], runs[1][1], runs[0][0], runs[0][1])
    assert np.array_equal(runs[2][0], runs[0][0]) and np.array_equal(runs[2][1], runs[0][1])
    assert np.allclose(runs[0][0].sum(axis=-1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="threads"):
        classify_prepared(prepare(capture_and_model[0]), model, threads=0)
