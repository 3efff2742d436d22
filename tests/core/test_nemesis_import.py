"""NEMESIS import of cropped ground truths and of files with odd value types (fuzzing findings)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from core.dataset.folders import read_dataset
from core.dataset.nemesis_files import read_nemesis_ground_truth, read_nemesis_spectra
from core.dataset.nemesis_import import import_nemesis
from core.errors import DatasetError
from core.labels.nemesis import read_crop_offsets
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.cli import assert_one_line_error, neurohsi

CODES = {0: 0, 1: 101, 2: 200, 3: 300, 4: 302, 5: 320}


@pytest.fixture(scope="module")
def capture():
    return generate_capture(seed=4, patient="ID18", profile=small_profile())  # cube 40 x 60


def archive(folder, capture, gt_codes):
    """A NEMESIS folder: IDxxxxCyy.tif triplet, and a SNAPgt map of raw codes as MATLAB writes it."""
    from core.capture.files import write_frame

    folder.mkdir(parents=True, exist_ok=True)
    write_frame(folder / "ID0018C01.tif", capture.raw, capture.metadata)
    write_frame(folder / "ID0018CD01.tif", capture.dark, capture.metadata)
    write_frame(folder / "ID0018CW01.tif", capture.white, capture.metadata)
    scipy.io.savemat(folder / "SNAPgt{}_cropped_Pre-processed.mat".format("ID0018C01"), {"groundTruthMap": gt_codes})
    return folder


def cropped(capture, top=5, left=7, h=20, w=30):
    labels = capture.labels[top : top + h, left : left + w]
    return np.vectorize(CODES.get)(labels).astype(np.uint16), labels


def test_cropped_map_without_offset_says_how_to_give_one(tmp_path, capture):
    codes, _ = cropped(capture)
    src = archive(tmp_path / "nemesis", capture, codes)
    with pytest.raises(DatasetError, match=r"map is 20x30, the cube is 40x60; if it is cropped, give .*--crop-offset ID0018C01=ROW,COL"):
        import_nemesis(src, tmp_path / "out")


def test_cropped_map_is_placed_at_its_offset(tmp_path, capture):
    codes, labels = cropped(capture, top=5, left=7)
    src = archive(tmp_path / "nemesis", capture, codes)
    import_nemesis(src, tmp_path / "out", crop_offsets={"ID0018C01": (5, 7)})
    (item,) = read_dataset(tmp_path / "out")
    placed = item.load_labels()
    np.testing.assert_array_equal(placed[5:25, 7:37], labels)
    assert not placed[:5].any() and not placed[:, :7].any() and item.meta["ground_truth_offset_rc"] == [5, 7]


def test_offset_that_does_not_fit_is_refused(tmp_path, capture):
    codes, _ = cropped(capture)
    src = archive(tmp_path / "nemesis", capture, codes)
    with pytest.raises(DatasetError, match=r"ground truth 20x30 at crop offset \(30, 7\) does not fit the 40x60 cube"):
        import_nemesis(src, tmp_path / "out", crop_offsets={"ID0018": (30, 7)})  # by patient id too


def test_cli_option_and_json_file(tmp_path, capture):
    codes, labels = cropped(capture, top=2, left=3)
    src = archive(tmp_path / "nemesis", capture, codes)
    result = neurohsi("import-nemesis", src, tmp_path / "a", "--crop-offset", "ID0018C01=2,3")
    assert result.returncode == 0, result.stderr
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"ID0018C01": {"row": 2, "col": 3}}))
    result = neurohsi("import-nemesis", src, tmp_path / "b", "--crop-offsets", offsets)
    assert result.returncode == 0, result.stderr
    for name in ("a", "b"):
        np.testing.assert_array_equal(read_dataset(tmp_path / name)[0].load_labels()[2:22, 3:33], labels)
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "c", "--crop-offset", "ID0018C01=two,3"), "ROW,COL")
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "c"), "SNAPgtID0018C01", "--crop-offset")


def test_bad_offset_files(tmp_path):
    path = tmp_path / "o.json"
    path.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="must hold a JSON object"):
        read_crop_offsets(path)
    path.write_text('{"ID1": [1]}')
    with pytest.raises(ValueError, match="ID1: crop offset must be ROW,COL"):
        read_crop_offsets(path)
    path.write_text("[" * 100_000)
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_crop_offsets(path)


def test_boolean_ground_truth_is_refused(tmp_path, capture):
    path = tmp_path / "SNAPgtID0018C01_cropped_Pre-processed.mat"
    scipy.io.savemat(path, {"groundTruthMap": capture.labels > 0})
    # MATLAB writes a logical map as uint8 0/1; it would import as nothing labelled.
    with pytest.raises(DatasetError, match=r"labels no pixel with a NEMESIS class code \(values found: 0, 1\); a logical mask"):
        read_nemesis_ground_truth(path)


def test_text_label4classes_is_refused(tmp_path):
    path = tmp_path / "ID0018C01_dataset.mat"
    scipy.io.savemat(path, {"data": np.zeros((2, 25)), "label": np.array([[101], [200]]), "label4Classes": np.array(["1", "2"])})
    with pytest.raises(DatasetError, match="'label4Classes' must hold numbers, got text"):
        read_nemesis_spectra(path)


def test_cli_bad_types_are_one_line(tmp_path, capture):
    src = archive(tmp_path / "nemesis", capture, capture.labels > 0)
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "out"), "SNAPgtID0018C01", "logical mask")
