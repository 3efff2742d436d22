"""Label PNGs, NEMESIS code mapping and label counts."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.classes import class_table
from core.errors import DatasetError
from core.labels.maps import write_label_png
from core.labels.maps import label_counts, label_png_shape, map_nemesis_codes, read_label_png


def test_label_png_round_trip_keeps_ids_and_uses_thesis_palette(tmp_path):
    labels = np.random.default_rng(0).integers(0, 6, size=(13, 21)).astype(np.uint8)
    path = write_label_png(tmp_path / "labels.png", labels)
    with Image.open(path) as image:
        assert image.mode == "P"
        palette = image.getpalette()
    for class_id in range(6):
        assert tuple(palette[3 * class_id : 3 * class_id + 3]) == class_table().colour(class_id, "thesis")
    back = read_label_png(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    assert label_png_shape(path) == (13, 21)


def test_greyscale_png_is_accepted(tmp_path):
    labels = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    Image.fromarray(labels).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "grey.png"), labels)


def test_read_rejects_bad_files(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DatasetError, match="rgb.png: .*mode RGB"):
        read_label_png(tmp_path / "rgb.png")
    Image.fromarray(np.full((4, 4), 9, np.uint8)).save(tmp_path / "nine.png")
    with pytest.raises(DatasetError, match="nine.png: value 9 is not a class id"):
        read_label_png(tmp_path / "nine.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DatasetError, match="text.png: not a readable PNG"):
        read_label_png(tmp_path / "text.png")
    with pytest.raises(DatasetError, match="missing.png: label map not found"):
        read_label_png(tmp_path / "missing.png")


def test_map_nemesis_codes_follows_the_archive_convention():
    codes = np.array(
        [0, 100, 101, 199, 200, 220, 299, 300, 301, 302, 303, 304, 310, 320, 321, 322, 323, 330, 331, 400, 401, 99, 1000],
        dtype=np.uint16,
    )
    expected = [0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 3, 0, 3, 5, 5, 5, 0, 0, 0, 0, 0, 0, 0]
    mapped = map_nemesis_codes(codes)
    assert mapped.dtype == np.uint8
    assert mapped.tolist() == expected
    # Shape is kept, and MATLAB doubles holding whole numbers are accepted.
    grid = map_nemesis_codes(np.array([[101.0, 302.0], [320.0, 401.0]]))
    assert grid.tolist() == [[1, 4], [5, 0]]


def test_map_nemesis_codes_rejects_non_codes():
    with pytest.raises(ValueError, match="integers"):
        map_nemesis_codes(np.array([1.5]))
    with pytest.raises(ValueError, match="0..65535"):
        map_nemesis_codes(np.array([-3]))


def test_label_counts_counts_classes_not_unlabelled():
    labels = np.array([[0, 1, 1], [2, 5, 5], [5, 0, 0]], dtype=np.uint8)
    assert label_counts(labels) == {1: 2, 2: 1, 3: 0, 4: 0, 5: 3}
