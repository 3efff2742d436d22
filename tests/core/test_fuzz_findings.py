"""Fuzz suite, the second pass's findings one by one (issue 26): each input is refused in one line
naming the file and the problem, within a stated peak memory (tracemalloc), or graded not ok."""
from __future__ import annotations

import io
import types
import warnings

import numpy as np
import pytest
import scipy.io
import tifffile

from core.capture.files import load_capture, read_frame, write_frame
from core.capture.quality import assess_quality
from core.dataset.check import read_manifest
from core.dataset.folders import read_capture_folder
from core.dataset.nemesis_files import read_nemesis_ground_truth, read_nemesis_spectra
from core.errors import MAX_LINE_CHARS, CaptureError, DatasetError, ModelFileError, one_line
from core.labels.maps import read_label_png
from core.model.compatibility import check_compatible
from core.model.files import load_model
from core.model.inference import classify
from tests.support.datasets import write_small_dataset
from tests.support.fuzz import nested, peak_bytes, with_meta, with_scaled_weights, write
from tests.support.scoring import profile_id_of, save_random_model, small_capture

MB = 1_000_000


def refused(read, path, error, *fragments, bound=32 * MB) -> str:
    """Run ``read()``; it must raise ``error`` whose one line names ``path`` and holds ``fragments``."""
    outcome, peak = peak_bytes(read)
    assert isinstance(outcome, error), f"{type(outcome).__name__}: {str(outcome)[:300]}"
    line = one_line(outcome)
    assert "\n" not in line and len(line) <= MAX_LINE_CHARS + 40, line[:300]
    assert path.name in line, line
    for fragment in fragments:
        assert fragment in line, line
    assert peak <= bound, f"peak {peak / MB:.0f} MB over {bound / MB:.0f} MB"
    return line


@pytest.fixture(scope="module")
def capture():
    return small_capture(7)


@pytest.fixture(scope="module")
def model_data(tmp_path_factory, capture):
    path = tmp_path_factory.mktemp("findings-model") / "m.safetensors"
    save_random_model(path, profile_id=profile_id_of(capture))
    return path.read_bytes()


# ------------------------------------------------------------------ JSON files


@pytest.fixture()
def capture_folder(tmp_path):
    root = write_small_dataset(tmp_path / "dataset", patients=("ID30",))
    return next(p for p in root.iterdir() if p.is_dir())


@pytest.mark.parametrize("text, fragment", [(nested(100_000), "nested too deeply"),
                                             ('{"patient": ' + "9" * 5000 + "}", "more than 4300 digits")])
def test_meta_json_nested_deep_or_with_a_huge_number(capture_folder, text, fragment):
    path = write(capture_folder / "meta.json", text.encode())
    refused(lambda: read_capture_folder(capture_folder), path, DatasetError, fragment)


def test_saving_labels_beside_a_meta_json_nested_deep(capture_folder):
    from core.labels.store import save_labels

    path = write(capture_folder / "meta.json", nested(100_000).encode())
    labels = np.ones((4, 4), np.uint8)
    refused(lambda: save_labels(capture_folder, labels, author="fuzz"), path, DatasetError, "nested too deeply")


@pytest.mark.parametrize("text, fragment", [(nested(100_000), "nested too deeply"),
                                             ('{"files": [' + "1" * 5000 + "]}", "more than 4300 digits")])
def test_manifest_json_nested_deep_or_with_a_huge_number(tmp_path, text, fragment):
    path = write(tmp_path / "manifest.json", text.encode())
    refused(lambda: read_manifest(tmp_path), path, DatasetError, fragment)


# ------------------------------------------------------------------ NEMESIS .mat files


def test_corrupt_zlib_inside_a_mat(tmp_path):
    path = tmp_path / "SNAPgtID0001C01_cropped_Pre-processed.mat"
    codes = np.random.default_rng(1).choice([101, 200, 400], (200, 300)).astype(np.float64)
    scipy.io.savemat(path, {"groundTruthMap": codes}, do_compression=True)
    data = bytearray(path.read_bytes())
    data[-40:-20] = bytes(20)  # damage the end of the zlib stream: past the header the size check reads
    path.write_bytes(bytes(data))
    refused(lambda: read_nemesis_ground_truth(path), path, DatasetError, "not a readable MATLAB .mat file")


def test_huge_declared_mat_is_refused_before_reading(tmp_path):
    path = tmp_path / "SNAPgtID0001C01_cropped_Pre-processed.mat"
    scipy.io.savemat(path, {"groundTruthMap": np.zeros((20000, 20000), np.uint8)}, do_compression=True)
    assert path.stat().st_size < 1_000_000
    # Before: 3.9 GB for import-nemesis, 283 MB for scipy.io.whosmat alone.
    refused(lambda: read_nemesis_ground_truth(path), path, DatasetError, "refused before reading", bound=4 * MB)


def test_all_zero_ground_truth_is_refused(tmp_path):
    path = tmp_path / "SNAPgtID0001C01_cropped_Pre-processed.mat"
    scipy.io.savemat(path, {"groundTruthMap": np.zeros((40, 60), np.uint16)})
    refused(lambda: read_nemesis_ground_truth(path), path, DatasetError, "labels no pixel (all zero)")


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda c: c["label"].__setitem__(0, -5), "not NEMESIS codes"),
        (lambda c: c["label"].__setitem__(0, np.nan), "not NEMESIS codes"),
        (lambda c: c["data"].__setitem__((3, 4), np.nan), "NaN or infinite values in 1 of 50 spectra"),
        (lambda c: c.__setitem__("data", c["data"][:, :7]), "spectra have 7 bands, the capture needs 25"),
    ],
)
def test_bad_spectra_are_refused(tmp_path, change, fragment):
    rng = np.random.default_rng(2)
    content = {"data": rng.random((50, 25)), "label": np.full((50, 1), 101.0), "label4Classes": np.ones((50, 1))}
    change(content)
    path = tmp_path / "ID0001C01_dataset.mat"
    scipy.io.savemat(path, content)
    refused(lambda: read_nemesis_spectra(path, n_bands=25), path, DatasetError, fragment)


# ------------------------------------------------------------------ lossy or nonsense captures


def test_jpeg_saved_as_labels_png(tmp_path):
    from PIL import Image

    path = tmp_path / "labels.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 6, (40, 60)).astype(np.uint8)).save(path, format="JPEG")
    refused(lambda: read_label_png(path), path, DatasetError, "JPEG image, not a PNG")


def test_raw_frame_stored_as_jpeg(tmp_path, capture):
    path = tmp_path / "ID0001C01.tif"
    frame = (capture.raw >> 8).astype(np.uint8)
    tifffile.imwrite(path, frame, compression="jpeg", compressionargs={"level": 50})
    refused(lambda: read_frame(path), path, CaptureError, "lossy JPEG compression")


def test_nan_band_wavelengths_are_refused(tmp_path):
    from tests.support.ximea import REAL_POSITION_WAVELENGTHS, write_real_frame

    wavelengths = (float("nan"),) + tuple(REAL_POSITION_WAVELENGTHS[1:])
    path = write_real_frame(tmp_path / "ID0001C01.tif", np.zeros((1088, 2048), np.uint16), wavelengths=wavelengths)
    refused(lambda: read_frame(path), path, CaptureError, "wavelength_nm", "not a finite number")


def test_nan_cube_wavelengths_fail_the_model_check():
    info = types.SimpleNamespace(name="m", version="1", n_bands=3, profile_id="p", wavelengths_nm=(500.0, 600.0, 700.0),
                                 patch_size=7)
    cube = types.SimpleNamespace(data=np.zeros((20, 20, 3), np.float32), profile_id="p",
                                 wavelengths_nm=(500.0, float("nan"), 700.0))
    with pytest.raises(ModelFileError, match=r"band 1 has no valid wavelength \(NaN\)"):
        check_compatible(info, cube, path="m.safetensors")


def test_raw_values_beyond_the_references_range_are_not_ok(tmp_path, capture):
    folder = tmp_path / "capture"
    folder.mkdir()
    raw = write_frame(folder / "ID0001C01.tif", capture.raw, capture.metadata)
    write_frame(folder / "ID0001CD01.tif", capture.dark, capture.metadata)
    write_frame(folder / "ID0001CW01.tif", capture.white, capture.metadata)
    fine = assess_quality(load_capture(raw))
    assert [c.severity for c in fine.checks if c.code == "raw_beyond_references"] == ["ok"]
    write_frame(raw, np.minimum(capture.raw.astype(np.uint32) * 16, 65535).astype(np.uint16), capture.metadata)
    report = assess_quality(load_capture(raw))
    assert report.status != "ok"
    (check,) = [c for c in report.checks if c.code == "raw_beyond_references"]
    assert check.severity == "unusable"


# ------------------------------------------------------------------ model files


def test_weights_times_1e37_give_one_line_not_nan_maps(tmp_path, capture, model_data):
    path = write(tmp_path / "scaled.safetensors", with_scaled_weights(model_data, 1e37))
    model = load_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warning would be a second, raw line
        refused(lambda: classify(capture, model), path, ModelFileError, "non-finite probabilities", bound=200 * MB)


def _ood(threshold: float) -> dict:
    from core.spectral.ood import fit_ood

    rng = np.random.default_rng(4)
    description = fit_ood(rng.random((200, 25)), rng.integers(1, 3, 200)).to_dict()
    description["threshold"] = threshold
    return description


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: m.__setitem__("ood", _ood(1e300)), "the check would never fire"),
        (lambda m: m.__setitem__("class_names", ["tumour", "healthy", "venous blood", "arterial blood", "dura mater"]),
         "class names and ids are swapped"),
        (lambda m: m.__setitem__("class_names", ["Healthy tissue", "Tumour", "Venous", "Dura", "Arterial blood"]),
         "class 4 is named 'Dura'"),
        (lambda m: m.__setitem__("wavelengths_nm", [float("nan")] * 25), "wavelengths_nm must be 25 positive numbers"),
        (lambda m: m.__setitem__("class_names", ["x" * 5_000_000] * 4), "class_names must be 5 strings"),
    ],
)
def test_model_metadata_nonsense_is_refused(tmp_path, model_data, change, fragment):
    path = write(tmp_path / "model.safetensors", with_meta(model_data, change))
    line = refused(lambda: load_model(path), path, ModelFileError, fragment, bound=128 * MB)
    assert len(line) <= MAX_LINE_CHARS + 40  # a 5 MB name list is not echoed


def test_model_metadata_with_a_5000_digit_number_is_refused(tmp_path, model_data):
    data = with_meta(model_data, lambda m: m.__setitem__("patch_size", "BIG"), replace=('"BIG"', "7" * 5000))
    path = write(tmp_path / "model.safetensors", data)
    refused(lambda: load_model(path), path, ModelFileError, "more than 4300 digits")


def test_model_names_that_fit_the_table_in_other_words_pass(tmp_path, model_data):
    names = ["Healthy", "tumour", "Venous blood", "arterial_blood", "Dura mater"]
    path = write(tmp_path / "model.safetensors", with_meta(model_data, lambda m: m.__setitem__("class_names", names)))
    assert load_model(path).info.class_names == tuple(names)


def test_one_line_never_echoes_a_huge_input():
    line = one_line(DatasetError("offsets-" + "9" * 52_000_000 + ".json", "crop-offset file not found"))
    assert len(line) <= MAX_LINE_CHARS + 40
    assert line.startswith("offsets-999") and line.endswith("crop-offset file not found")
    assert "characters cut" in line


def test_deflated_frame_larger_than_the_sensor_is_refused_on_its_header():
    from core.capture.files import capture_from_bytes

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((8192, 8191), np.uint16), compression="zlib")
    big = buffer.getvalue()
    outcome, peak = peak_bytes(lambda: capture_from_bytes(big, big, big, max_shape=(1088, 2048)))
    assert isinstance(outcome, CaptureError) and "larger than the sensor (1088x2048)" in str(outcome)
    assert peak <= 8 * MB  # the three frames would inflate to 402 MB
