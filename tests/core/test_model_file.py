"""Model files: round trip, identity, and one-line refusals of every bad file."""
from __future__ import annotations

import hashlib
import json
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save as save_safetensors

from core.errors import ModelFileError
from core.model.network import Conv2DNet
from core.model.compatibility import check_compatible
from core.model.files import (
    TENSOR_NAMES,
    ModelInfo,
    load_model,
    save_model,
)
from core.spectral.chain import Cube

NAMES = ("Healthy tissue", "Tumour", "Venous blood", "Arterial blood", "Dura mater")


def _save(path, net=None, **kw):
    torch.manual_seed(0)
    net = net or Conv2DNet()
    args = dict(name="unit", class_ids=(1, 2, 3, 4, 5), class_names=NAMES, profile_id="thesis-sm5x5-nir")
    args.update(kw)
    return net, save_model(path, net, **args)


def _header(path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data


def test_round_trip_keeps_weights_metadata_and_sha256(tmp_path):
    path = tmp_path / "m.safetensors"
    net, info = _save(
        path, training={"captures": ["ID0001C01"], "epochs": 3}, metrics={"oacc": 0.8}, version="2", created="2024-01-02T03:04:05Z"
    )
    loaded = load_model(path)
    assert loaded.path == path
    assert loaded.info == info
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info.patch_size, info.n_bands, info.padding, info.format_version) == (7, 25, "reflect", 1)
    assert info.class_ids == (1, 2, 3, 4, 5) and info.class_names == NAMES
    assert info.training == {"captures": ["ID0001C01"], "epochs": 3} and info.metrics == {"oacc": 0.8}
    assert (info.version, info.created) == ("2", "2024-01-02T03:04:05Z")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    assert not loaded.net.training  # ready for inference


def test_file_layout_matches_design(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path)
    header, _ = _header(path)
    shapes = {k: v["shape"] for k, v in header.items() if k != "__metadata__"}
    assert shapes == {
        "conv.weight": [16, 25, 2, 2],
        "conv.bias": [16],
        "fc1.weight": [64, 144],
        "fc1.bias": [64],
        "fc2.weight": [5, 64],
        "fc2.bias": [5],
    }
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")
    meta = json.loads(header["__metadata__"]["neurohsi"])
    assert meta["architecture"] == "Conv2DNet" and meta["padding"] == "reflect" and meta["profile_id"] == "thesis-sm5x5-nir"


def test_same_weights_and_created_give_same_bytes(tmp_path):
    _, a = _save(tmp_path / "a.safetensors", created="2024-01-01T00:00:00Z")
    _, b = _save(tmp_path / "b.safetensors", created="2024-01-01T00:00:00Z")
    assert a.sha256 == b.sha256


def test_other_patch_sizes_and_class_sets_round_trip(tmp_path):
    path = tmp_path / "m.safetensors"
    net = Conv2DNet(n_bands=16, n_classes=3, patch_size=9)
    _save(path, net, class_ids=(1, 2, 5), class_names=("a", "b", "c"), profile_id="p16")
    loaded = load_model(path)
    assert (loaded.info.patch_size, loaded.info.n_bands, loaded.info.class_ids) == (9, 16, (1, 2, 5))
    assert loaded.net.fc1.weight.shape == (64, 16 * 4 * 4)


def test_save_refuses_mismatched_class_lists(tmp_path):
    with pytest.raises(ValueError, match="5 classes"):
        _save(tmp_path / "m.safetensors", class_ids=(1, 2))


def _expect_error(path, fragment):
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert fragment in message, message


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.safetensors", "not found")


def test_folder(tmp_path):
    _expect_error(tmp_path, "not a file")


def test_pickle_file_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"

    class Boom:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    _expect_error(path, "pickle")
    assert not marker.exists()


def test_torch_save_archive_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(Conv2DNet().state_dict(), path)
    _expect_error(path, "pickle")


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"])
def test_not_safetensors(tmp_path, content):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    _expect_error(path, "not a safetensors file")


def test_truncated_payload(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    _expect_error(path, "corrupt")


def test_safetensors_without_neurohsi_metadata(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(save_safetensors({"weight": np.zeros((3, 3), np.float32)}, metadata={"framework": "pt"}))
    _expect_error(path, "without NeuroHSI metadata")


def _rewrite(path, *, meta_patch=None, tensors_patch=None):
    """Re-save ``path`` with its metadata and tensors changed."""
    from safetensors.numpy import load_file

    header, _ = _header(path)
    meta = json.loads(header["__metadata__"]["neurohsi"])
    meta.update(meta_patch or {})
    tensors = load_file(path)
    for key, value in (tensors_patch or {}).items():
        if value is None:
            del tensors[key]
        else:
            tensors[key] = value
    path.write_bytes(save_safetensors(tensors, metadata={"neurohsi": json.dumps(meta)}))


@pytest.mark.parametrize(
    "meta_patch, fragment",
    [
        ({"format_version": 99}, "unsupported NeuroHSI model format version 99"),
        ({"architecture": "ResNet"}, "unsupported architecture"),
        ({"padding": "wrap"}, "unknown padding mode"),
        ({"class_ids": [1, 2, 3, 4, 4]}, "repeat"),
        ({"class_names": ["a"]}, "class_names"),
        ({"n_bands": 16}, "tensor conv.weight has shape"),
        ({"patch_size": 9}, "tensor fc1.weight has shape"),
    ],
)
def test_bad_metadata(tmp_path, meta_patch, fragment):
    path = tmp_path / "m.safetensors"
    _save(path)
    _rewrite(path, meta_patch=meta_patch)
    _expect_error(path, fragment)


def test_wrong_tensor_names(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path)
    _rewrite(path, tensors_patch={"fc2.bias": None, "head.bias": np.zeros(5, np.float32)})
    _expect_error(path, "tensor names")


def test_wrong_tensor_shape(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path)
    _rewrite(path, tensors_patch={"fc2.weight": np.zeros((4, 64), np.float32)})
    _expect_error(path, "tensor fc2.weight has shape (4, 64)")


def test_non_finite_weights(tmp_path):
    path = tmp_path / "m.safetensors"
    _save(path)
    _rewrite(path, tensors_patch={"fc1.bias": np.full(64, np.nan, np.float32)})
    _expect_error(path, "NaN")


def _cube(h=10, w=12, b=25, profile="thesis-sm5x5-nir"):
    return Cube(np.ones((h, w, b), np.float32), np.ones((h, w), bool), None, profile)


def test_check_compatible(tmp_path):
    _, info = _save(tmp_path / "m.safetensors")
    check_compatible(info, _cube())  # fits: no error
    with pytest.raises(ModelFileError, match="trained on 25 bands, but the capture has 16"):
        check_compatible(info, _cube(b=16), path=tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="camera profile 'thesis-sm5x5-nir', but the capture uses 'other'"):
        check_compatible(info, _cube(profile="other"))
    with pytest.raises(ModelFileError, match="7x7 patches, which do not fit a 3x12 cube"):
        check_compatible(info, _cube(h=3))


def test_model_info_label_and_dict(tmp_path):
    _, info = _save(tmp_path / "m.safetensors", name="demo", version="3")
    assert info.label == f"demo v3 ({info.sha256[:12]})"
    d = info.to_dict()
    assert d["class_ids"] == [1, 2, 3, 4, 5] and json.dumps(d)
    d.pop("ood_available")
    assert ModelInfo(**{**d, "class_ids": tuple(d["class_ids"]), "class_names": tuple(d["class_names"])}) == info
    assert len(TENSOR_NAMES) == 6
    assert {info: 1}[info] == 1  # hashable: can key a cache


def test_model_info_and_results_import_without_torch():
    """The scoring client and the GUI import ModelInfo / ClassificationResult; torch loads only for a model."""
    import subprocess
    import sys

    code = "import sys, core.model.files, core.model.inference, core.output.render; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


WL = tuple(665.0 + 12.3 * i for i in range(25))


def test_wavelengths_are_recorded_and_checked(tmp_path):
    path = tmp_path / "m.safetensors"
    _, info = _save(path, wavelengths_nm=WL)
    loaded = load_model(path).info
    assert loaded.wavelengths_nm == WL and loaded.to_dict()["wavelengths_nm"] == list(WL)
    near = Cube(np.ones((10, 12, 25), np.float32), np.ones((10, 12), bool), np.float32(WL) + 2.0, "thesis-sm5x5-nir")
    check_compatible(loaded, near)  # within a few nm: calibration rounding
    shifted = np.float32(WL)
    shifted[7] += 40.0
    far = Cube(near.data, near.valid, shifted, "thesis-sm5x5-nir")
    with pytest.raises(ModelFileError, match=r"m\.safetensors: model 'unit' v1 was trained on bands at \[665, 677.*\] nm, "
                       r"but the capture's bands are at \[665, 677.*\] nm; band 7 differs by 40\.0 nm") as err:
        check_compatible(loaded, far, path=path)
    assert "\n" not in str(err.value)
    _save(tmp_path / "old.safetensors")
    check_compatible(load_model(tmp_path / "old.safetensors").info, far)  # a file without the record: no check


def test_old_files_load_without_ood_description(tmp_path):
    path = tmp_path / "old.safetensors"
    _save(path)
    info = load_model(path).info
    assert info.ood is None and not info.ood_available and info.wavelengths_nm is None


def test_ood_description_is_stored_and_validated(tmp_path):
    from core.spectral.ood import fit_ood

    rng = np.random.default_rng(0)
    desc = fit_ood(rng.normal(size=(300, 25)), rng.integers(1, 6, size=300))
    path = tmp_path / "m.safetensors"
    _save(path, ood=desc.to_dict())
    assert load_model(path).info.ood_available
    _rewrite(path, meta_patch={"ood": {**desc.to_dict(), "threshold": -1}})
    _expect_error(path, "out-of-distribution description: holds NaN, infinite or non-positive values")


@pytest.mark.parametrize("where", ["header", "metadata"])
def test_deeply_nested_json_is_one_line(tmp_path, where):
    path = tmp_path / "deep.safetensors"
    deep = "[" * 100_000 + "]" * 100_000
    if where == "header":
        body = ('{"x":' + deep + "}").encode()
        path.write_bytes(struct.pack("<Q", len(body)) + body)
        fragment = "nested too deeply"
    else:
        _save(path)
        header, data = _header(path)
        header["__metadata__"]["neurohsi"] = deep
        body = json.dumps(header).encode()
        (n,) = struct.unpack("<Q", data[:8])
        path.write_bytes(struct.pack("<Q", len(body)) + body + data[8 + n :])
        fragment = "nested too deeply"
    _expect_error(path, fragment)


def test_a_file_too_large_for_a_model_is_refused_before_reading(tmp_path):
    from core.model.files import MAX_FILE_BYTES

    huge = tmp_path / "huge.safetensors"
    with huge.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ModelFileError, match=f"huge.safetensors: too large for a NeuroHSI model \\({MAX_FILE_BYTES + 1} bytes"):
        load_model(huge)
