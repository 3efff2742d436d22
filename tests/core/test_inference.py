"""Dense inference equals per-patch inference; the one-call pipeline; refusing models that do not fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.capture.files import load_capture, write_frame
from core.errors import ModelFileError
from core.model.inference import (
    ClassificationResult,
    Prepared,
    classify,
    classify_files,
    classify_prepared,
    predict_dense,
    prepare,
    prepare_files,
)
from core.model.network import NUMPY_PADDING_MODES, Conv2DNet, DenseConv2DNet
from core.model.files import load_model, save_model
from core.spectral.chain import Cube


def per_patch(net: Conv2DNet, data: np.ndarray, padding: str) -> np.ndarray:
    """The thesis way: one ``p x p`` patch per pixel (borders padded the same way), softmax ``(H, W, C)``."""
    h, w, b = data.shape
    half = net.patch_size // 2
    padded = np.pad(data, ((half, half), (half, half), (0, 0)), mode=NUMPY_PADDING_MODES[padding])
    patches = np.stack(
        [padded[i : i + net.patch_size, j : j + net.patch_size] for i in range(h) for j in range(w)]
    ).transpose(0, 3, 1, 2)
    with torch.no_grad():
        logits = net.eval()(torch.from_numpy(np.ascontiguousarray(patches)))
    return torch.softmax(logits, dim=1).numpy().reshape(h, w, -1)


def _net(seed=0, **kw) -> Conv2DNet:
    torch.manual_seed(seed)
    net = Conv2DNet(**kw).eval()
    with torch.no_grad():  # larger weights than the default init, so classes really compete
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _data_scaled(cube: Cube, seed: int = 0) -> Conv2DNet:
    """A random net whose conv and fc1 pre-activations are standardised on ``cube``.

    Real spectra are all alike after RMS normalisation, so a plain random net
    gives one class everywhere; standardising each layer (bias and scale from
    the data) makes its map vary across the scene without any training.
    """
    net = _net(seed)
    half = net.patch_size // 2
    padded = np.pad(cube.data, ((half, half), (half, half), (0, 0)), mode="reflect")
    x = torch.from_numpy(
        np.stack([padded[i : i + 7, j : j + 7] for i in range(0, cube.data.shape[0], 2) for j in range(0, cube.data.shape[1], 2)])
        .transpose(0, 3, 1, 2)
        .copy()
    )
    with torch.no_grad():
        c = net.conv(x)
        mean, std = c.mean(dim=(0, 2, 3)), c.std(dim=(0, 2, 3)) + 1e-6
        net.conv.weight.div_(std[:, None, None, None])
        net.conv.bias.sub_(mean).div_(std)
        h = net.fc1(torch.relu(net.pool(net.conv(x))).flatten(1))
        mean, std = h.mean(0), h.std(0) + 1e-6
        net.fc1.weight.div_(std[:, None])
        net.fc1.bias.sub_(mean).div_(std)
    return net.eval()


def _cube(seed=0, h=23, w=31, b=25, invalid=()) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((h, w, b)).astype(np.float32)
    data /= np.sqrt((data**2).mean(-1, keepdims=True))
    valid = np.ones((h, w), bool)
    for i, j in invalid:
        valid[i, j] = False
        data[i, j] = 0.0
    return Cube(data, valid, None, "test")


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
def test_dense_equals_per_patch_border_included(padding):
    net, cube = _net(), _cube(invalid=[(0, 0), (5, 7), (22, 30)])
    probs, labels = predict_dense(net, cube, padding=padding, class_ids=(1, 2, 3, 4, 5))
    reference = per_patch(net, cube.data, padding)
    ref_labels = (reference.argmax(-1) + 1).astype(np.uint8)
    ref_labels[~cube.valid] = 0
    reference[~cube.valid] = 0.0
    assert probs.shape == (23, 31, 5) and probs.dtype == np.float32
    assert labels.shape == (23, 31) and labels.dtype == np.uint8
    assert np.abs(probs - reference).max() < 1e-5
    np.testing.assert_array_equal(labels, ref_labels)
    assert len(np.unique(labels[cube.valid])) >= 3  # a test where every pixel is one class proves little
    # borders (rows/cols within the padding) are in the comparison above; check they really were classified
    border = np.ones((23, 31), bool)
    border[3:-3, 3:-3] = False
    assert (labels[border & cube.valid] > 0).all()


@pytest.mark.parametrize("patch_size", [3, 5, 9])
def test_dense_equals_per_patch_other_patch_sizes(patch_size):
    net, cube = _net(1, n_bands=8, n_classes=3, patch_size=patch_size), _cube(1, h=12, w=14, b=8)
    probs, labels = predict_dense(net, cube)
    reference = per_patch(net, cube.data, "reflect")
    assert np.abs(probs - reference).max() < 1e-5
    np.testing.assert_array_equal(labels, reference.argmax(-1) + 1)


def test_labels_are_class_ids_and_invalid_pixels_are_zero():
    net, cube = _net(), _cube(invalid=[(3, 3)])
    probs, labels = predict_dense(net, cube, class_ids=(5, 4, 3, 2, 1))
    np.testing.assert_array_equal(labels[cube.valid], 5 - probs.argmax(-1)[cube.valid])
    assert labels[3, 3] == 0 and not probs[3, 3].any()
    np.testing.assert_allclose(probs[cube.valid].sum(-1), 1.0, atol=1e-5)


def test_dense_refuses_even_patch_and_bad_input():
    with pytest.raises(ValueError, match="odd patch_size"):
        DenseConv2DNet.from_patch_model(Conv2DNet(patch_size=6))
    with pytest.raises(ValueError, match="expects 25 bands, the cube has 16"):
        predict_dense(_net(), _cube(b=16))
    with pytest.raises(ValueError, match="too small for reflect padding"):
        predict_dense(_net(), _cube(h=3))
    with pytest.raises(ValueError, match="unknown padding mode"):
        predict_dense(_net(), _cube(), padding="wrap")


@pytest.fixture(scope="module")
def synthetic():
    from core.capture.synthetic.captures import generate_capture, small_profile

    return generate_capture(seed=5, profile=small_profile())


def _write(folder, synthetic):
    path = write_frame(folder / "ID0018C01.tif", synthetic.raw, synthetic.metadata)
    write_frame(folder / "ID0018CD01.tif", synthetic.dark, synthetic.metadata)
    write_frame(folder / "ID0018CW01.tif", synthetic.white, synthetic.metadata)
    return path


def _loaded(tmp_path, net, profile_id):
    path = tmp_path / "m.safetensors"
    save_model(path, net, name="unit", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id=profile_id)
    return load_model(path)


def test_dense_equals_per_patch_on_a_generated_capture(synthetic):
    """The acceptance test: a whole preprocessed synthetic capture, border and invalid pixels included."""
    from core.spectral.chain import preprocess_capture

    cube = preprocess_capture(synthetic.to_capture())
    net = _data_scaled(cube)
    probs, labels = predict_dense(net, cube, class_ids=(1, 2, 3, 4, 5))
    reference = per_patch(net, cube.data, "reflect")
    ref_labels = (reference.argmax(-1) + 1).astype(np.uint8)
    ref_labels[~cube.valid] = 0
    reference[~cube.valid] = 0.0
    assert probs.shape == cube.data.shape[:2] + (5,)
    assert np.abs(probs - reference).max() < 1e-5
    np.testing.assert_array_equal(labels, ref_labels)
    assert len(np.unique(labels)) >= 3


def test_classify_files_on_a_generated_capture(tmp_path, synthetic):
    from core.spectral.chain import preprocess_capture

    raw_path = _write(tmp_path, synthetic)
    model = _loaded(tmp_path, _net(), synthetic.profile.id)
    result = classify_files(raw_path, model)
    assert isinstance(result, ClassificationResult)
    h, w = synthetic.truth.shape
    assert result.labels.shape == (h, w) and result.probabilities.shape == (h, w, 5) and result.rgb.shape == (h, w, 3)
    assert result.rgb.dtype == np.uint8 and result.rgb.any()
    assert set(result.timings_s) >= {"read", "preprocess", "infer", "total"}
    assert result.timings_s["total"] >= result.timings_s["read"] + result.timings_s["infer"]
    assert result.model == model.info and result.source == "local" and result.cube is not None
    # the same as preprocessing and dense prediction by hand
    probs, labels = predict_dense(model.net, preprocess_capture(load_capture(raw_path)))
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-6)
    # classify() on the in-memory capture agrees and has no "read" stage
    in_memory = classify(synthetic.to_capture(), model)
    np.testing.assert_array_equal(in_memory.labels, result.labels)
    assert "read" not in in_memory.timings_s


def test_model_for_other_bands_is_refused(tmp_path, synthetic):
    model = _loaded(tmp_path, _net(n_bands=16), synthetic.profile.id)
    with pytest.raises(ModelFileError) as err:
        classify(synthetic.to_capture(), model)
    assert str(err.value).startswith(str(model.path))
    assert "16 bands, but the capture has 25" in str(err.value)


def test_model_for_another_profile_is_refused(tmp_path, synthetic):
    model = _loaded(tmp_path, _net(), "thesis-sm5x5-nir")
    with pytest.raises(ModelFileError, match="camera profile 'thesis-sm5x5-nir', but the capture uses 'synthetic-small'"):
        classify(synthetic.to_capture(), model)


def test_prepare_then_classify_prepared_is_classify_files(tmp_path, synthetic):
    """The two steps give the same map as the one call, and prepare_files reads what load_capture reads."""
    raw_path = _write(tmp_path, synthetic)
    model = _loaded(tmp_path, _net(), synthetic.profile.id)
    prepared = prepare_files(raw_path)
    assert isinstance(prepared, Prepared) and prepared.quality.status == "ok"
    assert set(prepared.timings_s) == {"read", "preprocess", "rgb", "quality", "total"}
    np.testing.assert_array_equal(prepared.capture.raw, load_capture(raw_path).raw)
    assert prepared.rgb.dtype == np.uint8 and prepared.rgb.shape == (*prepared.cube.data.shape[:2], 3)
    in_memory = prepare(synthetic.to_capture())
    assert "read" not in in_memory.timings_s
    np.testing.assert_array_equal(in_memory.cube.data, prepared.cube.data)
    two_steps = classify_prepared(prepared, model)
    one_call = classify_files(raw_path, model)
    np.testing.assert_array_equal(two_steps.labels, one_call.labels)
    assert two_steps.rgb is prepared.rgb and two_steps.cube is prepared.cube  # nothing computed twice
    # The quality report travels with the map, with the out-of-distribution check added.
    assert [c.code for c in two_steps.quality.checks] == [c.code for c in prepared.quality.checks] + ["out_of_distribution"]


def test_total_is_the_wall_clock_around_the_call(tmp_path, synthetic, monkeypatch):
    """"total" is measured start to end: it covers every stage, and time spent between stages too."""
    import time

    import core.model.inference as inference

    raw_path = _write(tmp_path, synthetic)
    model = _loaded(tmp_path, _net(), synthetic.profile.id)
    from tests.support.stage_timing import sequential_s as stages

    start = time.perf_counter()
    result = classify_files(raw_path, model)
    outside = time.perf_counter() - start
    assert stages(result.timings_s) <= result.timings_s["total"] <= outside

    # Work outside every named stage (here: a slow hand-over between the two steps) counts in "total".
    real = inference.classify_prepared

    def slow_hand_over(prepared, loaded):
        time.sleep(0.3)
        return real(prepared, loaded)

    monkeypatch.setattr(inference, "classify_prepared", slow_hand_over)
    result = classify(synthetic.to_capture(), model)
    assert result.timings_s["total"] >= stages(result.timings_s) + 0.3

    # classify_prepared: the prepare wall clock plus its own, never a sum of stages.
    prepared = prepare(synthetic.to_capture())
    prepared = Prepared(prepared.capture, prepared.cube, prepared.rgb, {**prepared.timings_s, "total": 5.0})
    assert real(prepared, model).timings_s["total"] >= 5.0


def test_softmax_class_major_is_the_per_pixel_softmax_bit_for_bit():
    """The fast class-plane softmax does per pixel what the plain last-axis softmax does, in the same order."""
    from core.model.inference import _softmax_last

    logits = np.random.default_rng(5).normal(0, 8, (37, 53, 5)).astype(np.float32)
    logits[0, 0] = [100.0, -100.0, 100.0, 0.0, 1e-3]  # would overflow exp without the max shift
    plain = np.subtract(logits, logits.max(axis=-1, keepdims=True), dtype=np.float32)
    np.exp(plain, out=plain)
    plain /= plain.sum(axis=-1, keepdims=True)
    probs = _softmax_last(logits)
    assert probs.dtype == np.float32 and probs.shape == logits.shape and probs.flags.c_contiguous
    np.testing.assert_array_equal(probs, plain)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
