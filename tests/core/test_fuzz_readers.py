"""Fuzz suite, in process: a seeded corpus of malformed files through every file reader (issue 26).

Each reader gets byte mutations of a valid file written by the real writer (truncations,
flipped bytes, 32-bit size fields set huge or zero, chunks inserted, deleted, duplicated).
For every input the reader either reads it (some mutations leave a valid file) or raises
the domain error whose one line names the file and the problem; never another exception,
never more memory than the bound stated per reader (measured with tracemalloc, which
counts numpy's buffers). ``CORPUS_SIZES`` gives the counts (docs/testing.md).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from core.capture.files import frame_to_bytes, read_frame
from core.dataset.check import read_manifest
from core.dataset.folders import read_capture_folder
from core.dataset.nemesis_files import read_nemesis_ground_truth, read_nemesis_spectra
from core.errors import MAX_LINE_CHARS, NeuroHSIError, one_line
from core.labels.maps import read_label_png
from core.labels.nemesis import read_crop_offsets
from core.model.files import load_model
from core.labels.maps import write_label_png
from tests.support.datasets import write_small_dataset
from tests.support.fuzz import mutants, peak_bytes, write
from tests.support.scoring import profile_id_of, save_random_model, small_capture

MB = 1_000_000
SEED = 26
# Inputs per reader, and the peak memory each may take on any of them. The bounds are the
# readers' own limits (a TIFF may claim up to 64 Mpx, a label PNG 16 Mpx, a .mat 64 MB) plus
# decoding overhead; the valid inputs themselves take under 2 MB.
CORPUS_SIZES = {
    "tiff": 80, "ximea_xml": 30, "label_png": 50, "model": 50, "gt_mat": 40, "spectra_mat": 40,
    "meta_json": 20, "manifest_json": 20, "crop_offsets_json": 20,
}
PEAK_BOUNDS = {
    "tiff": 300 * MB, "ximea_xml": 32 * MB, "label_png": 64 * MB, "model": 64 * MB, "gt_mat": 200 * MB,
    "spectra_mat": 200 * MB, "meta_json": 16 * MB, "manifest_json": 16 * MB, "crop_offsets_json": 16 * MB,
}


def check_outcome(outcome, path, peak: int, bound: int, what: str) -> None:
    """Read, or refused with one line naming ``path``; within ``bound`` bytes at peak."""
    assert peak <= bound, f"{what}: peak {peak / MB:.0f} MB over {bound / MB:.0f} MB"
    if not isinstance(outcome, BaseException):
        return
    assert isinstance(outcome, NeuroHSIError), f"{what}: {type(outcome).__name__}: {str(outcome)[:300]}"
    line = one_line(outcome)
    assert "\n" not in line and len(line) <= MAX_LINE_CHARS + 40, (what, line[:300])
    assert path.name in line, (what, line)
    assert not line.startswith("unexpected"), (what, line)
    assert len(line) > len(str(path)) + 5, (what, line)  # a problem follows the name


@pytest.fixture(scope="module")
def capture():
    return small_capture(5)


@pytest.fixture(scope="module")
def model_data(tmp_path_factory, capture):
    path = tmp_path_factory.mktemp("fuzz-model") / "m.safetensors"
    save_random_model(path, profile_id=profile_id_of(capture))
    return path.read_bytes()


def _run_corpus(tmp_path, name: str, valid: bytes, filename: str, read, seed: int) -> int:
    refused = 0
    for i, (desc, data) in enumerate(mutants(valid, CORPUS_SIZES[name], seed)):
        folder = tmp_path / f"{i:03d}"
        folder.mkdir()
        path = write(folder / filename, data)
        outcome, peak = peak_bytes(lambda: read(path))
        check_outcome(outcome, path, peak, PEAK_BOUNDS[name], f"{name} #{i} ({desc})")
        refused += isinstance(outcome, BaseException)
    return refused


def test_tiff_frames(tmp_path, capture):
    valid = frame_to_bytes(capture.raw, capture.metadata)
    refused = _run_corpus(tmp_path, "tiff", valid, "ID0001C01.tif", read_frame, SEED)
    assert refused >= CORPUS_SIZES["tiff"] // 2  # the corpus is hostile, not a set of valid files


def test_ximea_xml_inside_tiffs(tmp_path, capture):
    import tifffile

    from core.capture.metadata import build_ximea_xml

    xml = build_ximea_xml(capture.metadata).encode()
    for i, (desc, text) in enumerate(mutants(xml, CORPUS_SIZES["ximea_xml"], SEED + 1)):
        path = tmp_path / f"ID{i:04d}C01.tif"
        description = text.decode("ascii", "replace").replace("\ufffd", "?")  # TIFF strings are 7-bit ASCII
        tifffile.imwrite(path, capture.raw, description=description, metadata=None)
        outcome, peak = peak_bytes(lambda: read_frame(path))
        check_outcome(outcome, path, peak, PEAK_BOUNDS["ximea_xml"], f"xml #{i} ({desc})")


def test_label_pngs(tmp_path):
    labels = np.random.default_rng(SEED).integers(0, 6, (40, 60)).astype(np.uint8)
    write_label_png(tmp_path / "valid.png", labels)
    _run_corpus(tmp_path, "label_png", (tmp_path / "valid.png").read_bytes(), "labels.png", read_label_png, SEED + 2)


def test_model_files(tmp_path, model_data):
    refused = _run_corpus(tmp_path, "model", model_data, "model.safetensors", load_model, SEED + 3)
    assert refused >= CORPUS_SIZES["model"] // 2


def test_ground_truth_mats(tmp_path):
    codes = np.random.default_rng(SEED).choice([101, 200, 302, 320, 400], (40, 60)).astype(np.float64)
    scipy.io.savemat(tmp_path / "valid.mat", {"groundTruthMap": codes}, do_compression=True)
    _run_corpus(
        tmp_path, "gt_mat", (tmp_path / "valid.mat").read_bytes(), "SNAPgtID0001C01_cropped_Pre-processed.mat",
        read_nemesis_ground_truth, SEED + 4,
    )


def test_spectra_mats(tmp_path):
    rng = np.random.default_rng(SEED)
    n = 300
    content = {"data": rng.random((n, 25)), "label": rng.choice([101, 200], (n, 1)).astype(np.float64),
               "label4Classes": rng.integers(1, 3, (n, 1)).astype(np.float64)}
    scipy.io.savemat(tmp_path / "valid.mat", content, do_compression=True)
    _run_corpus(
        tmp_path, "spectra_mat", (tmp_path / "valid.mat").read_bytes(), "ID0001C01_dataset.mat",
        lambda path: read_nemesis_spectra(path, n_bands=25), SEED + 5,
    )


def test_meta_json(tmp_path):
    root = write_small_dataset(tmp_path / "dataset", patients=("ID30",))
    folder = next(p for p in root.iterdir() if p.is_dir())
    valid = (folder / "meta.json").read_bytes()
    for i, (desc, data) in enumerate(mutants(valid, CORPUS_SIZES["meta_json"], SEED + 6)):
        (folder / "meta.json").write_bytes(data)
        outcome, peak = peak_bytes(lambda: read_capture_folder(folder))
        check_outcome(outcome, folder / "meta.json" if isinstance(outcome, BaseException) and "meta.json" in str(outcome)
                      else folder, peak, PEAK_BOUNDS["meta_json"], f"meta.json #{i} ({desc})")


def test_manifest_json(tmp_path):
    files = [{"path": f"ID0001C01/{n}", "sha256": "ab" * 32, "bytes": 10} for n in ("raw.tif", "labels.png")]
    valid = json.dumps({"format": 1, "files": files}).encode()
    for i, (desc, data) in enumerate(mutants(valid, CORPUS_SIZES["manifest_json"], SEED + 7)):
        root = tmp_path / f"{i:03d}"
        root.mkdir()
        path = write(root / "manifest.json", data)
        outcome, peak = peak_bytes(lambda: read_manifest(root))
        check_outcome(outcome, path, peak, PEAK_BOUNDS["manifest_json"], f"manifest #{i} ({desc})")


def test_crop_offset_json(tmp_path):
    valid = json.dumps({"ID0018C01": [10, 20], "ID0025": {"row": 3, "col": 4}}).encode()
    _run_corpus(tmp_path, "crop_offsets_json", valid, "offsets.json", read_crop_offsets, SEED + 8)


def test_corpus_holds_at_least_300_inputs():
    assert sum(CORPUS_SIZES.values()) >= 300
    assert set(CORPUS_SIZES) == set(PEAK_BOUNDS)
