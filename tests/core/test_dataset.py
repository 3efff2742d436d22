"""Dataset folders: write, read, validation errors, and NEMESIS archive import."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.io

from core.capture.files import write_frame
from core.dataset.folders import CAPTURE_FILES, read_dataset, write_capture_folder
from core.dataset.nemesis_files import read_nemesis_ground_truth, read_nemesis_spectra
from core.dataset.nemesis_import import import_nemesis
from core.errors import DatasetError
from core.labels.maps import write_label_png
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile

# Raw NEMESIS codes standing for each class (plus bone and background for class 0).
CLASS_TO_CODE = {0: 400, 1: 101, 2: 220, 3: 301, 4: 302, 5: 321}


@pytest.fixture(scope="module")
def captures():
    return [generate_capture(seed=s, patient=p, profile=small_profile()) for s, p in ((1, "ID25"), (2, "ID18"))]


@pytest.fixture
def dataset(tmp_path, captures):
    root = tmp_path / "DATASET"
    for capture in captures:
        write_capture_folder(
            root,
            capture.capture_id,
            capture.raw,
            capture.dark,
            capture.white,
            capture.labels,
            metadata=capture.metadata,
            meta={"patient": capture.patient, "source": "synthetic"},
        )
    return root


def test_round_trip_sorted_with_meta(dataset, captures):
    items = read_dataset(dataset)
    assert [c.capture_id for c in items] == ["ID0018C01", "ID0025C01"]
    by_id = {c.capture_id: c for c in captures}
    for item in items:
        original = by_id[item.capture_id]
        assert sorted(p.name for p in item.folder.iterdir()) == sorted(CAPTURE_FILES)
        assert item.meta["capture_id"] == item.capture_id
        assert item.meta["source"] == "synthetic" and item.patient == original.patient
        assert item.meta["profile"] == "synthetic-small"
        assert item.meta["cube_shape"] == [40, 60, 25]
        counts = {int(k): v for k, v in item.meta["label_counts"].items()}
        assert counts == {c: int((original.labels == c).sum()) for c in range(1, 6)}
        assert "created" in item.meta
        capture = item.load_capture()
        np.testing.assert_array_equal(capture.raw, original.raw)
        np.testing.assert_array_equal(capture.white, original.white)
        assert capture.capture_id == item.capture_id
        assert capture.metadata == original.metadata
        np.testing.assert_array_equal(item.load_labels(), original.labels)
        cube = preprocess_capture(capture)
        assert cube.profile_id == "synthetic-small" and cube.data.shape[:2] == item.load_labels().shape
        assert item.profile() == small_profile()


def test_patient_falls_back_to_the_capture_id(dataset):
    meta_path = dataset / "ID0018C01" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["patient"]
    meta_path.write_text(json.dumps(meta))
    assert read_dataset(dataset)[0].patient == "ID0018"


def test_missing_and_empty_datasets(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: dataset folder not found"):
        read_dataset(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="file.txt: is not a folder"):
        read_dataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("files beside captures are ignored")
    with pytest.raises(DatasetError, match="empty: dataset is empty"):
        read_dataset(tmp_path / "empty")


def test_capture_folder_given_instead_of_dataset(dataset):
    with pytest.raises(DatasetError, match="is a capture folder, not a dataset"):
        read_dataset(dataset / "ID0025C01")


@pytest.mark.parametrize("missing", ["raw.tif", "white.tif", "labels.png", "meta.json"])
def test_missing_file_is_named(dataset, missing):
    (dataset / "ID0025C01" / missing).unlink()
    with pytest.raises(DatasetError, match=rf"ID0025C01: capture folder lacks {missing}"):
        read_dataset(dataset)


def test_labels_of_the_wrong_size(dataset):
    write_label_png(dataset / "ID0025C01" / "labels.png", np.zeros((41, 60), np.uint8))
    with pytest.raises(DatasetError, match=r"labels.png: label map is 41x60, the cube is 40x60"):
        read_dataset(dataset)


def test_reference_of_another_shape(dataset, captures):
    write_frame(dataset / "ID0025C01" / "white.tif", captures[0].white[:-5])
    with pytest.raises(DatasetError, match=r"white.tif: reference shape \(198, 303\) differs from raw.tif \(203, 303\)"):
        read_dataset(dataset)


def test_bad_meta_json_and_bad_raw(dataset):
    (dataset / "ID0025C01" / "meta.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"meta.json: not valid JSON"):
        read_dataset(dataset)
    shutil.rmtree(dataset / "ID0025C01")
    (dataset / "ID0018C01" / "raw.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(DatasetError, match=r"raw.tif: not a TIFF file"):
        read_dataset(dataset)


def test_write_rejects_inconsistent_input(tmp_path, captures):
    c = captures[0]
    with pytest.raises(DatasetError, match=r"label map shape \(20, 60\) does not match the cube \(40, 60\)"):
        write_capture_folder(tmp_path, "X", c.raw, c.dark, c.white, c.labels[:20], metadata=c.metadata)
    with pytest.raises(ValueError, match="dark frame shape"):
        write_capture_folder(tmp_path, "X", c.raw, c.dark[:-1], c.white, c.labels, metadata=c.metadata)
    with pytest.raises(ValueError, match="capture id"):
        write_capture_folder(tmp_path, "../escape", c.raw, c.dark, c.white, c.labels, metadata=c.metadata)
    with pytest.raises(ValueError, match="not a class id"):
        write_capture_folder(tmp_path, "X", c.raw, c.dark, c.white, c.labels + 6, metadata=c.metadata)
    # Without metadata the thesis profile applies, and these frames are far too small for it.
    with pytest.raises(DatasetError, match="too small"):
        write_capture_folder(tmp_path, "X", c.raw, c.dark, c.white, c.labels)
    assert not (tmp_path / "X").exists()


# --------------------------------------------------------------------------- NEMESIS


def _nemesis_archive(folder, captures, *, with_spectra=True):
    """Write NEMESIS-named triplets, SNAPgt ground truth (raw codes, cube size) and _dataset.mat spectra."""
    folder.mkdir(parents=True, exist_ok=True)
    for capture in captures:
        capture.write_nemesis_files(folder)
        codes = np.vectorize(CLASS_TO_CODE.get)(capture.labels).astype(np.uint16)
        codes[:2, :2] = 330  # bone: not one of the five classes
        scipy.io.savemat(folder / f"SNAPgt{capture.capture_id}_cropped_Pre-processed.mat", {"groundTruthMap": codes})
        if with_spectra:
            labelled = capture.labels > 0
            scipy.io.savemat(
                folder / f"{capture.capture_id}_dataset.mat",
                {
                    "data": capture.spectra[labelled].astype(np.float64),
                    "label": codes[labelled].reshape(-1, 1),
                    "label4Classes": capture.labels[labelled].reshape(-1, 1),
                },
            )


def test_import_nemesis_archive(tmp_path, captures):
    src = tmp_path / "nemesis"
    _nemesis_archive(src, captures)
    # A capture without ground truth is skipped, not fatal.
    extra = generate_capture(seed=3, patient="ID0099", profile=small_profile())
    write_frame(src / "ID0099C01.tif", extra.raw, extra.metadata)
    write_frame(src / "ID0099CD01.tif", extra.dark, extra.metadata)
    write_frame(src / "ID0099CW01.tif", extra.white, extra.metadata)
    messages = []
    summary = import_nemesis(src, tmp_path / "DATASET", progress=messages.append)
    assert [i["capture_id"] for i in summary["imported"]] == ["ID0018C01", "ID0025C01"]
    assert [s["capture_id"] for s in summary["skipped"]] == ["ID0099C01"]
    assert len(messages) == 3 and "ID0099C01: skipped" in messages[2]
    assert "_dataset.mat not used: the cube is made from the raw frames" in messages[0]

    items = read_dataset(tmp_path / "DATASET")
    by_id = {c.capture_id: c for c in captures}
    for item in items:
        original = by_id[item.capture_id]
        expected = original.labels.copy()
        expected[:2, :2] = 0
        np.testing.assert_array_equal(item.load_labels(), expected)
        assert item.meta["source"] == "nemesis" and item.patient == item.capture_id[:6]
        assert item.kind == "raw" and item.meta["kind"] == "raw"
        np.testing.assert_array_equal(item.load_capture().raw, original.raw)
        # beside raw frames the archive's spectra are not copied: nothing would read them
        assert not (item.folder / "spectra.npz").exists()


def test_read_nemesis_files(tmp_path, captures):
    src = tmp_path / "nemesis"
    _nemesis_archive(src, captures[:1])
    capture = captures[0]
    spectra = read_nemesis_spectra(src / f"{capture.capture_id}_dataset.mat")
    n = int((capture.labels > 0).sum())
    assert spectra.data.shape == (n, 25) and spectra.data.dtype == np.float64
    assert spectra.label.dtype == np.uint16 and spectra.label4classes.dtype == np.uint8
    np.testing.assert_array_equal(spectra.label4classes, capture.labels[capture.labels > 0])
    truth = read_nemesis_ground_truth(src / f"SNAPgt{capture.capture_id}_cropped_Pre-processed.mat")
    assert truth.shape == (40, 60) and truth.dtype == np.uint8 and truth[0, 0] == 0


def test_nemesis_errors(tmp_path, captures):
    with pytest.raises(DatasetError, match="NEMESIS folder not found"):
        import_nemesis(tmp_path / "none", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no NEMESIS files"):
        import_nemesis(tmp_path / "empty", tmp_path / "out")

    src = tmp_path / "nemesis"
    _nemesis_archive(src, captures[:1], with_spectra=False)
    gt = src / f"SNAPgt{captures[0].capture_id}_cropped_Pre-processed.mat"
    scipy.io.savemat(gt, {"groundTruthMap": np.full((217, 409), 101, np.uint16)})
    with pytest.raises(DatasetError, match=r"SNAPgt.*\.mat: ground truth does not fit ID0025C01.tif"):
        import_nemesis(src, tmp_path / "out")
    scipy.io.savemat(gt, {"somethingElse": np.zeros((40, 60), np.uint16)})
    with pytest.raises(DatasetError, match="no 'groundTruthMap' variable"):
        import_nemesis(src, tmp_path / "out")
    gt.write_bytes(b"MATLAB 7.3 MAT-file".ljust(128, b" ")[:124] + b"\x00\x02IM" + b"\x00" * 64)
    with pytest.raises(DatasetError, match="v7.3"):
        import_nemesis(src, tmp_path / "out")
    gt.write_bytes(b"MATLAB 5.0 MAT-file, but truncated")
    with pytest.raises(DatasetError, match="not a readable MATLAB .mat file"):
        import_nemesis(src, tmp_path / "out")
    gt.unlink()
    with pytest.raises(DatasetError, match="no capture can be imported.*raw frames but no SNAPgt"):
        import_nemesis(src, tmp_path / "out")

    bad = tmp_path / "bad_dataset.mat"
    scipy.io.savemat(bad, {"data": np.zeros((4, 25)), "label": np.zeros(3, np.uint16), "label4Classes": np.zeros(4, np.uint8)})
    with pytest.raises(DatasetError, match="4 spectra but 3 labels"):
        read_nemesis_spectra(bad)
    scipy.io.savemat(bad, {"data": np.zeros((4, 25))})
    with pytest.raises(DatasetError, match="no 'label' variable"):
        read_nemesis_spectra(bad)
