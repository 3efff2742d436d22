"""Patch extraction: equal to a naive per-pixel loop (border included), labels and validity honoured."""
from __future__ import annotations

import numpy as np
import pytest

from core.model.patches import build_patch_set, extract_patches


def _naive_patch(cube: np.ndarray, row: int, col: int, p: int) -> np.ndarray:
    r = p // 2
    padded = np.pad(cube, ((r, r), (r, r), (0, 0)), mode="reflect")
    return padded[row : row + p, col : col + p, :].transpose(2, 0, 1)


@pytest.fixture
def scene():
    rng = np.random.default_rng(3)
    cube = rng.normal(size=(9, 11, 4)).astype(np.float32)
    labels = np.zeros((9, 11), dtype=np.uint8)
    labels[0, 0], labels[8, 10], labels[4, 5], labels[0, 7], labels[5, 0] = 1, 2, 5, 3, 4
    labels[2, 2] = 2  # invalid pixel below: must be skipped
    valid = np.ones((9, 11), dtype=bool)
    valid[2, 2] = False
    return cube, labels, valid


@pytest.mark.parametrize("p", [3, 7])
def test_patches_equal_naive_reflect_windows_including_borders(scene, p):
    cube, labels, valid = scene
    patches, targets = extract_patches(cube, labels, p, valid=valid)
    rows, cols = np.nonzero((labels > 0) & valid)
    assert patches.shape == (len(rows), 4, p, p) and patches.dtype == np.float32
    assert patches.flags["C_CONTIGUOUS"]
    for k, (r, c) in enumerate(zip(rows, cols)):
        np.testing.assert_array_equal(patches[k], _naive_patch(cube, r, c, p))
        assert targets[k] == labels[r, c] - 1  # class id -> index in CLASS_IDS (1..5)
    assert patches[:, :, p // 2, p // 2].tolist() == cube[rows, cols].tolist()  # centred on the pixel


def test_invalid_and_unlabelled_pixels_are_skipped(scene):
    cube, labels, valid = scene
    _, targets = extract_patches(cube, labels, 7, valid=valid)
    assert len(targets) == 5
    _, all_targets = extract_patches(cube, labels, 7)  # no mask: the labelled invalid pixel counts
    assert len(all_targets) == 6


def test_custom_class_ids_map_to_indices(scene):
    cube, labels, _ = scene
    _, targets = extract_patches(cube, np.where(labels == 5, 9, labels).astype(np.uint8), 3,
                                 class_ids=(9, 1, 2, 3, 4))
    assert sorted(targets.tolist()) == [0, 1, 2, 2, 3, 4]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patch_size": 6}, "odd"),
        ({"labels": np.full((9, 11), 7, np.uint8)}, "not class ids"),
        ({"labels": np.zeros((9, 10), np.uint8)}, "do not match"),
        ({"valid": np.ones((3, 3), bool)}, "validity mask"),
    ],
)
def test_bad_input_is_a_clear_value_error(scene, kwargs, message):
    cube, labels, valid = scene
    args = {"cube_data": cube, "labels": labels, "patch_size": 7, "valid": valid, **kwargs}
    with pytest.raises(ValueError, match=message):
        extract_patches(args.pop("cube_data"), args.pop("labels"), args.pop("patch_size"), **args)


def test_patch_set_concatenates_captures_with_capture_index(scene):
    cube, labels, valid = scene
    data = build_patch_set([("a", cube, labels, valid), ("b", cube * 2, labels, None)], 5)
    assert len(data) == 11 and data.capture_ids == ("a", "b")
    assert data.capture_index.tolist() == [0] * 5 + [1] * 6
    np.testing.assert_array_equal(data.patches[5:][valid[np.nonzero(labels)]] / 2, data.patches[:5])
    assert data.class_counts.sum() == 11
    sub = data.subset(np.array([0, 6]))
    assert sub.capture_index.tolist() == [0, 1] and sub.patches.flags["C_CONTIGUOUS"]


def test_accepts_a_cube_and_uses_its_validity_mask(scene):
    from core.spectral.chain import Cube

    cube, labels, valid = scene
    patches, targets = extract_patches(Cube(cube, valid, None, "test"), labels, 7)
    expected, expected_targets = extract_patches(cube, labels, 7, valid=valid)
    np.testing.assert_array_equal(patches, expected)
    np.testing.assert_array_equal(targets, expected_targets)
