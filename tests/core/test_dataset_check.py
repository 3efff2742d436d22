"""Dataset integrity: full decode before upload (truncated TIFF, bad label ids), manifest check before training."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.dataset.check import check_dataset_files, verify_manifest
from core.errors import DatasetError


@pytest.fixture
def dataset(tmp_path):
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path / "ds"
    profile = small_profile(16, 24)
    for k, patient in enumerate(("ID18", "ID20")):
        cap = generate_capture(seed=k, patient=patient, profile=profile)
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                             metadata=cap.metadata, meta={"patient": patient})
    return root


def write_manifest(root):
    """The manifest as remote.blob_storage writes it: path, size, sha256 of every capture file."""
    files = []
    for path in sorted(root.glob("*/*")):
        files.append({"path": f"{path.parent.name}/{path.name}", "size": path.stat().st_size,
                      "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    (root / "manifest.json").write_text(json.dumps({"name": root.name, "files": files}))


def test_good_dataset_decodes_and_counts_labels(dataset):
    counts = check_dataset_files(dataset)
    assert len(counts) == 2
    assert all(sum(c.values()) > 0 for c in counts.values())


def test_truncated_white_reference_is_refused_before_upload(dataset):
    white = sorted(dataset.glob("*/white.tif"))[1]
    data = white.read_bytes()
    white.write_bytes(data[: len(data) - 200])  # header intact, the last pixels missing
    with pytest.raises(DatasetError) as err:
        check_dataset_files(dataset)
    assert "white.tif" in str(err.value)


def test_label_png_with_an_unknown_class_id_is_refused(dataset):
    labels = sorted(dataset.glob("*/labels.png"))[0]
    array = np.array(Image.open(labels))
    array[0, 0] = 9
    Image.fromarray(array, mode="L").save(labels)
    with pytest.raises(DatasetError) as err:
        check_dataset_files(dataset)
    assert "labels.png" in str(err.value)


def test_manifest_accepts_the_uploaded_files_and_refuses_changes(dataset, tmp_path):
    write_manifest(dataset)
    assert len(verify_manifest(dataset)["files"]) == 10
    # one byte changed, same size: only the sha256 catches it
    copy = tmp_path / "changed"
    shutil.copytree(dataset, copy)
    raw = sorted(copy.glob("*/raw.tif"))[0]
    data = bytearray(raw.read_bytes())
    data[-1] ^= 0xFF
    raw.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256 .* does not match") as err:
        verify_manifest(copy)
    assert str(raw) in str(err.value)
    # a missing file, an extra file, no manifest at all
    missing = tmp_path / "missing"
    shutil.copytree(dataset, missing)
    sorted(missing.glob("*/dark.tif"))[0].unlink()
    with pytest.raises(DatasetError, match="missing from the dataset"):
        verify_manifest(missing)
    extra = tmp_path / "extra"
    shutil.copytree(dataset, extra)
    (sorted(extra.glob("ID*"))[0] / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="not in the manifest"):
        verify_manifest(extra)
    (extra / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="upload did not finish"):
        verify_manifest(extra)
