"""Dense inference equals per-patch inference; the one-call pipeline; refusing models that do not fit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.capture_io import load_capture, write_frame
from core.errors import ModelFileError
from core.inference import ClassificationResult, classify, classify_files, load_default_model, predict_dense
from core.model import NUMPY_PADDING_MODES, Conv2DNet, DenseConv2DNet
from core.model_file import load_model, save_model
from core.preprocessing import Cube


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


def _triplet(folder, shape=(60, 90), seed=0):
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1000, size=shape, dtype=np.uint16)
    raw = (dark + (white - dark) * rng.uniform(0.05, 0.95, size=shape)).astype(np.uint16)
    raw_path = write_frame(folder / "ID0001C01.tif", raw)
    write_frame(folder / "ID0001CD01.tif", dark)
    write_frame(folder / "ID0001CW01.tif", white)
    return raw_path


def _profile_for(shape):
    """A built-in-like profile with the thesis id and geometry scaled to ``shape``."""
    from core.camera_profiles import THESIS_PROFILE_ID, load_profile

    thesis = load_profile(THESIS_PROFILE_ID)
    return type(thesis)(**{**thesis.__dict__, "area_wh": (shape[1] // 5 * 5, shape[0] // 5 * 5), "sensor_shape": shape})


def test_classify_files_small_capture(tmp_path, monkeypatch):
    raw_path = _triplet(tmp_path)
    model_path = tmp_path / "m.safetensors"
    save_model(model_path, _net(), name="unit", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id="thesis-sm5x5-nir")
    model = load_model(model_path)
    # a small frame with the thesis profile's id: resolve_profile gives the thesis profile
    import core.preprocessing as preprocessing

    monkeypatch.setattr("core.camera_profiles.resolve_profile", lambda metadata, name=None: _profile_for((60, 90)))
    result = classify_files(raw_path, model)
    assert isinstance(result, ClassificationResult)
    h, w = 12, 18
    assert result.labels.shape == (h, w) and result.probabilities.shape == (h, w, 5) and result.rgb.shape == (h, w, 3)
    assert set(result.timings_s) >= {"read", "preprocess", "infer", "total"}
    assert result.timings_s["total"] >= result.timings_s["infer"] > 0
    assert result.model.sha256 == model.info.sha256 and result.source == "local"
    # same as preprocessing + dense prediction by hand
    cube = preprocessing.preprocess_capture(load_capture(raw_path), _profile_for((60, 90)))
    probs, labels = predict_dense(model.net, cube)
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-6)


def test_model_for_other_bands_is_refused(tmp_path, monkeypatch):
    raw_path = _triplet(tmp_path)
    model_path = tmp_path / "m16.safetensors"
    save_model(model_path, _net(n_bands=16), name="b16", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id="thesis-sm5x5-nir")
    monkeypatch.setattr("core.camera_profiles.resolve_profile", lambda metadata, name=None: _profile_for((60, 90)))
    with pytest.raises(ModelFileError) as err:
        classify(load_capture(raw_path), load_model(model_path))
    assert str(err.value).startswith(str(model_path))
    assert "16 bands, but the capture has 25" in str(err.value)


def test_load_default_model_names_the_missing_file(monkeypatch, tmp_path):
    import resources

    monkeypatch.setattr(resources, "DEMO_MODEL_PATH", tmp_path / "demo.safetensors")
    with pytest.raises(ModelFileError, match="make demo-model"):
        load_default_model()
