"""The three NEMESIS forms on .mat files written in the archive's exact structure: read, import, refuse."""
from __future__ import annotations

import numpy as np
import pytest

from core.dataset.folders import read_dataset
from core.dataset.nemesis_files import (
    read_ground_truth_codes,
    read_nemesis_spectra,
    read_preprocessed_cube,
    recover_positions,
)
from core.dataset.nemesis_import import import_nemesis
from core.errors import DatasetError
from core.training.samples import sparse_patches
from tests.support.cli import assert_one_line_error, neurohsi
from tests.support.nemesis_mat import make_capture, write_archive, write_cube, write_ground_truth, write_spectra


def test_spectra_positions_are_recovered_in_column_major_order(tmp_path):
    [capture] = write_archive(tmp_path, [("ID0001C01", 1)]).values()
    spectra = read_nemesis_spectra(tmp_path / "ID0001C01_dataset.mat")
    codes = read_ground_truth_codes(tmp_path / "SNAPgtID0001C01_cropped_Pre-processed.mat")
    rows, cols = recover_positions(codes, spectra, gt_path=tmp_path / "gt.mat")
    np.testing.assert_allclose(spectra.data, capture.cube[rows, cols])
    np.testing.assert_array_equal(spectra.label4classes, capture.classes[rows, cols])
    # MATLAB order: by column, then row; a row-major reading would put these out of order
    assert np.all(np.diff(cols) >= 0) and not np.all(np.diff(rows[cols == cols[0]]) < 0)
    row_major = np.nonzero(capture.codes > 0)
    assert not np.array_equal(row_major[0], rows)


def test_spectra_of_another_capture_are_refused(tmp_path):
    write_archive(tmp_path, [("ID0001C01", 1)])
    other = make_capture("ID0001C01", 2)
    write_ground_truth(tmp_path, other)  # replaces the map with another capture's
    spectra = read_nemesis_spectra(tmp_path / "ID0001C01_dataset.mat")
    codes = read_ground_truth_codes(tmp_path / "SNAPgtID0001C01_cropped_Pre-processed.mat")
    with pytest.raises(DatasetError, match="not the same capture"):
        recover_positions(codes, spectra, gt_path=tmp_path / "gt.mat")


def test_import_a_mix_of_forms(tmp_path):
    src = tmp_path / "src"
    spectra_gt = write_archive(src, [("ID0001C01", 1)])  # spectra + ground truth
    cube_gt = write_archive(src, [("ID0002C01", 2)], forms=("gt", "cube", "spectra"))
    write_archive(src, [("ID0003C02", 3)], forms=("spectra",))  # no map: no positions
    write_archive(src, [("ID0004C01", 4)], forms=("gt",))  # nothing to learn from
    messages = []
    summary = import_nemesis(src, tmp_path / "ds", progress=messages.append)
    kinds = {i["capture_id"]: i["kind"] for i in summary["imported"]}
    assert kinds == {"ID0001C01": "spectra", "ID0002C01": "cube", "ID0003C02": "spectra"}
    assert [s["capture_id"] for s in summary["skipped"]] == ["ID0004C01"]
    assert "ground truth only" in summary["skipped"][0]["reason"]
    by_id = {m.split(":")[0].split("] ")[-1]: m for m in messages}
    assert "positions recovered" in by_id["ID0001C01"] and "assumed" in by_id["ID0001C01"]
    assert "without positions" in by_id["ID0003C02"] and "spectral model only" in by_id["ID0003C02"]
    assert "ID0002C01_dataset.mat not used" in by_id["ID0002C01"] and "assumed" in by_id["ID0002C01"]
    assert len(summary["assumed_wavelengths_nm"]) == 25

    captures = {c.capture_id: c for c in read_dataset(tmp_path / "ds")}
    assert {c.kind for c in captures.values()} == {"spectra", "cube"}
    assert captures["ID0001C01"].patient == "ID0001"
    with_positions = captures["ID0001C01"].load_spectra()
    truth = spectra_gt["ID0001C01"]
    np.testing.assert_allclose(with_positions.data, truth.cube[with_positions.rows, with_positions.cols], atol=1e-6)
    assert with_positions.map_shape == truth.codes.shape
    assert not captures["ID0003C02"].load_spectra().has_positions
    np.testing.assert_array_equal(captures["ID0002C01"].load_labels(), cube_gt["ID0002C01"].classes)
    np.testing.assert_allclose(captures["ID0002C01"].load_cube().data, cube_gt["ID0002C01"].cube, atol=1e-6)
    from core.dataset.check import check_dataset_files  # what runs before an upload

    counts = check_dataset_files(tmp_path / "ds")
    assert counts["ID0001C01"] == {c: int((truth.classes == c).sum()) for c in range(1, 6) if (truth.classes == c).any()}
    assert sum(counts["ID0002C01"].values()) == int((cube_gt["ID0002C01"].classes > 0).sum())


def _declare_huge(path):
    """Rewrite the first variable's declared dimensions (uncompressed MAT v5) to 100000 x 100000."""
    raw = bytearray(path.read_bytes())
    # 128-byte header, matrix tag (8), array flags sub-element (16), dimensions tag (8), then int32 dims
    assert int.from_bytes(raw[128:132], "little") == 14  # miMATRIX
    raw[160:168] = (100000).to_bytes(4, "little") * 2
    path.write_bytes(bytes(raw))


def test_huge_and_corrupt_mat_files_are_refused_in_one_line(tmp_path):
    src = tmp_path / "src"
    capture = make_capture("ID0001C01", 1)
    src.mkdir()
    path = write_spectra(src, capture)
    _declare_huge(path)
    with pytest.raises(DatasetError, match=r"variable 'data' declares 80000 MB .*refused before reading"):
        read_nemesis_spectra(path)
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "ds"), "ID0001C01_dataset.mat",
                          "refused before reading")
    path.write_bytes(b"MATLAB 5.0 MAT-file, damaged" + b"\x00" * 40)
    assert_one_line_error(neurohsi("import-nemesis", src, tmp_path / "ds"), "ID0001C01_dataset.mat",
                          "not a readable MATLAB .mat file")


def test_sparse_patches_take_labelled_neighbours_and_centre_for_the_rest(tmp_path):
    from core.dataset.folders import LabelledSpectra

    data = np.arange(3 * 4, dtype=np.float32).reshape(3, 4) + 1  # 3 pixels, 4 bands
    spectra = LabelledSpectra(data, np.array([1, 1, 2], np.uint8), np.zeros(3, np.uint16),
                              np.array([2, 2, 7]), np.array([2, 3, 0]), (9, 9))
    patches = sparse_patches(spectra, 3, name="t")
    assert patches.shape == (3, 4, 3, 3)
    np.testing.assert_array_equal(patches[0, :, 1, 1], data[0])
    np.testing.assert_array_equal(patches[0, :, 1, 2], data[1])  # the labelled right-hand neighbour
    np.testing.assert_array_equal(patches[0, :, 0, 0], data[0])  # unlabelled: the centre's spectrum
    np.testing.assert_array_equal(patches[2], np.broadcast_to(data[2][:, None, None], (4, 3, 3)))  # isolated
    no_positions = LabelledSpectra(data, spectra.class_ids, spectra.codes, None, None, None)
    with pytest.raises(DatasetError, match="use --model-kind spectral"):
        sparse_patches(no_positions, 7, name="ID0003C02")


def test_cube_files_read_with_wavelengths_from_the_file_or_assumed(tmp_path):
    capture = make_capture("ID0001C01", 1)
    mat = read_preprocessed_cube(write_cube(tmp_path, capture))
    assert mat.wavelengths_assumed and mat.profile_id == "thesis-sm5x5-nir" and mat.data.dtype == np.float32
    assert mat.valid.all() and mat.data.shape == (24, 32, 25)
    cube = capture.cube.astype(np.float32)
    cube[0, 0] = np.nan
    wavelengths = np.linspace(600, 900, 25).astype(np.float32)
    np.savez(tmp_path / "c.npz", cube=cube, valid=np.ones((24, 32), bool), wavelengths_nm=wavelengths,
             description=np.asarray('{"profile": "thesis-sm5x5-nir"}'))
    npz = read_preprocessed_cube(tmp_path / "c.npz")
    assert not npz.wavelengths_assumed and np.allclose(npz.wavelengths_nm, wavelengths)
    assert not npz.valid[0, 0] and npz.data[0, 0].sum() == 0 and npz.valid.sum() == 24 * 32 - 1


def test_cli_info_and_classify_a_cube_and_refuse_spectra(tmp_path):
    import json

    capture = make_capture("ID0001C01", 1)
    cube_path = write_cube(tmp_path, capture)
    info = json.loads(neurohsi("info", cube_path).stdout)
    assert info["kind"] == "preprocessed cube" and info["shape"] == [24, 32, 25] and info["wavelengths_assumed"]
    assert {c["code"] for c in info["quality"]["checks"]} == {"invalid_pixels", "preprocessed_cube"}
    result = neurohsi("classify", cube_path, "--json", "-o", tmp_path / "map.png")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["shape"] == [24, 32] and (tmp_path / "map.png").is_file()
    codes = {c["code"] for c in summary["quality"]["checks"]}
    assert {"invalid_pixels", "out_of_distribution"} <= codes and "saturated" not in codes
    spectra_path = write_spectra(tmp_path, capture)
    assert_one_line_error(neurohsi("classify", spectra_path), "_dataset.mat", "labelled spectra only")
    assert_one_line_error(neurohsi("classify", cube_path, "--endpoint", "http://127.0.0.1:9"), "classified locally")
    from core.model.inference import prepare_files

    with pytest.raises(ValueError, match="needs no dark or white reference"):
        prepare_files(cube_path, cube_path, cube_path)
    with pytest.raises(ValueError, match="a camera profile does not apply"):
        prepare_files(cube_path, profile_name="thesis-sm5x5-nir")
