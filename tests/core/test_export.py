"""core.output.export: each writer, the NPZ layout round trip, label PNGs core.labels.maps reads, atomic replacement."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from core.capture.files import capture_id_for
from core.classes import class_table
from core.errors import DatasetError
from core.labels.maps import write_label_png
from core.output.export import (
    NPZ_FIELDS,
    NPZ_LAYOUT_VERSION,
    overlay_image,
    read_npz,
    write_colour_png,
    write_npz,
    write_overlay_png,
)
from core.fileio import stale_temp_files
from core.model.inference import classify_files
from core.labels.maps import read_label_png
from core.model.choice import resolve_model
from core.output.render import colour_map
from core.capture.synthetic.captures import generate_capture


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """A real local classification, with the demo model, of a synthetic capture written as NEMESIS files."""
    capture = generate_capture(seed=3)
    raw_path = capture.write_nemesis_files(tmp_path_factory.mktemp("capture"))
    return classify_files(raw_path, resolve_model(None)), capture_id_for(raw_path)


def _labels():
    labels = np.zeros((20, 40), np.uint8)
    labels[:10, :20] = 1
    labels[:10, 20:] = 2
    labels[10:, :10] = 5
    return labels


def test_label_png_keeps_ids_shows_colours_and_reads_back(tmp_path):
    labels = np.random.default_rng(0).integers(0, 6, size=(13, 21)).astype(np.uint8)
    for palette in ("thesis", "colourblind"):
        path = write_label_png(tmp_path / f"{palette}.png", labels, palette=palette)
        np.testing.assert_array_equal(read_label_png(path), labels)
        with Image.open(path) as image:
            assert image.mode == "P"
            np.testing.assert_array_equal(np.asarray(image.convert("RGB")), colour_map(labels, palette=palette))
            for class_id in range(6):
                assert tuple(image.getpalette()[3 * class_id : 3 * class_id + 3]) == class_table().colour(class_id, palette)


def test_label_png_text_chunks(tmp_path):
    path = write_label_png(tmp_path / "l.png", _labels(), text={"neurohsi-recovery": '{"a": 1}'})
    with Image.open(path) as image:
        assert image.text == {"neurohsi-recovery": '{"a": 1}'}


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros((2, 3, 1), np.uint8), "2-D"),
        (np.full((2, 2), 6, np.uint8), "value 6"),
        (np.full((2, 2), -1, np.int16), "value -1"),
        (np.zeros((2, 2), np.float32), "integers"),
    ],
)
def test_label_png_refuses_what_is_not_a_label_map(tmp_path, labels, message):
    with pytest.raises(ValueError, match=f"x.png: .*{message}"):
        write_label_png(tmp_path / "x.png", labels)
    assert not (tmp_path / "x.png").exists()


def test_colour_png_is_rgb_class_colours(tmp_path):
    labels = _labels()
    path = write_colour_png(tmp_path / "c.png", labels, palette="colourblind")
    with Image.open(path) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), colour_map(labels, palette="colourblind"))


def test_overlay_png_names_model_capture_and_hidden_classes(tmp_path, result):
    res, capture_id = result
    kwargs = dict(model=res.model, classified_at=res.classified_at, capture_id=capture_id, opacity=0.6)
    path = write_overlay_png(tmp_path / "o.png", res.rgb, res.labels, **kwargs)
    written = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(written, np.asarray(overlay_image(res.rgb, res.labels, **kwargs)))
    h, w = res.labels.shape
    assert written.shape[1] > 2 * w and written.shape[0] > h
    # Each of capture id, opacity, hidden classes and model identity changes the picture.
    for change in (
        {"capture_id": "ID0099C01"},
        {"opacity": 0.2},
        {"hidden": (int(np.bincount(res.labels.ravel())[1:].argmax()) + 1,)},
        {"model": dataclasses.replace(res.model, version="other")},
    ):
        other = np.asarray(overlay_image(res.rgb, res.labels, **(kwargs | change)))
        assert other.shape == written.shape and (other != written).any(), change


def test_npz_round_trip_records_every_field(tmp_path, result):
    res, capture_id = result
    path = write_npz(tmp_path / "r.npz", res, capture_id=capture_id)
    back = read_npz(path)
    assert set(back) == set(NPZ_FIELDS)
    assert back["layout_version"] == NPZ_LAYOUT_VERSION
    assert back["labels"].dtype == np.uint8 and np.array_equal(back["labels"], res.labels)
    assert back["probabilities"].dtype == np.float32 and np.array_equal(back["probabilities"], res.probabilities)
    assert back["valid"].dtype == bool and np.array_equal(back["valid"], res.cube.valid)
    assert (back["labels"][~back["valid"]] == 0).all() and (back["labels"][back["valid"]] > 0).all()
    assert tuple(back["class_ids"]) == res.model.class_ids and tuple(back["class_names"]) == res.model.class_names
    assert back["wavelengths_nm"].dtype == np.float32
    np.testing.assert_array_equal(back["wavelengths_nm"], res.cube.wavelengths_nm)
    assert back["wavelengths_nm"].shape == (res.cube.data.shape[2],)
    assert (back["model_name"], back["model_version"], back["model_sha256"]) == (
        res.model.name, res.model.version, res.model.sha256,
    )
    assert back["capture_id"] == capture_id == "ID0018C01"
    assert back["classified_at"] == res.classified_at and back["classified_at"].endswith("Z")
    assert back["source"] == "local"
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects: plain NumPy reads it
        assert str(npz["model_sha256"]) == res.model.sha256


def test_npz_stores_float_arrays_and_deflates_the_rest(tmp_path, result):
    """Deflating float32 probabilities costs ~60 ms a full map for 5 %: live mode writes them as they are."""
    import zipfile

    res, capture_id = result
    with zipfile.ZipFile(write_npz(tmp_path / "r.npz", res, capture_id=capture_id)) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds["probabilities.npy"] == kinds["wavelengths_nm.npy"] == zipfile.ZIP_STORED
    assert kinds["labels.npy"] == kinds["valid.npy"] == kinds["model_name.npy"] == zipfile.ZIP_DEFLATED


def test_npz_of_a_remote_result_without_cube(tmp_path, result):
    res, _ = result
    remote = dataclasses.replace(res, cube=None, source="https://example.org/score")
    back = read_npz(write_npz(tmp_path / "r.npz", remote, capture_id="c1"))
    assert back["wavelengths_nm"].shape == (0,) and back["wavelengths_nm"].dtype == np.float32
    np.testing.assert_array_equal(back["valid"], res.labels > 0)
    assert back["source"] == "https://example.org/score" and back["capture_id"] == "c1"


def test_hidden_classes_show_the_rgb_beneath(result):
    from core.output.render import MIN_IMAGE_WIDTH

    res, capture_id = result
    counts = np.bincount(res.labels.ravel(), minlength=6)
    hidden, shown = (int(c) + 1 for c in np.argsort(counts[1:])[::-1][:2])  # the two commonest classes
    picture = np.asarray(
        overlay_image(res.rgb, res.labels, model=res.model, capture_id=capture_id, opacity=0.6, hidden=(hidden,))
    )
    h, w = res.labels.shape
    scale = -(-MIN_IMAGE_WIDTH // w)
    drawn = picture[: h * scale : scale, : w * scale : scale]
    np.testing.assert_array_equal(drawn[res.labels == hidden], res.rgb[res.labels == hidden])
    assert (drawn[res.labels == shown] != res.rgb[res.labels == shown]).any()


def test_read_npz_refuses_another_layout_version(tmp_path, result):
    res, capture_id = result
    with np.load(write_npz(tmp_path / "r.npz", res, capture_id=capture_id)) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["layout_version"] = np.asarray(NPZ_LAYOUT_VERSION + 1)
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(DatasetError, match=f"future.npz: NPZ layout version {NPZ_LAYOUT_VERSION + 1} is not supported"):
        read_npz(tmp_path / "future.npz")


def test_read_npz_refuses_other_files(tmp_path):
    np.savez(tmp_path / "old.npz", labels=np.zeros((2, 2), np.uint8))
    with pytest.raises(DatasetError, match="old.npz: .*missing layout_version"):
        read_npz(tmp_path / "old.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="text.npz: not a readable NPZ"):
        read_npz(tmp_path / "text.npz")
    with pytest.raises(DatasetError, match="gone.npz: .*not found"):
        read_npz(tmp_path / "gone.npz")


def test_failed_write_leaves_the_old_file(tmp_path, result):
    res, capture_id = result
    labels_path = write_label_png(tmp_path / "labels.png", _labels())
    npz_path = write_npz(tmp_path / "r.npz", res, capture_id=capture_id)
    before = labels_path.read_bytes(), npz_path.read_bytes()
    with pytest.raises(ValueError):
        write_label_png(labels_path, np.full((4, 4), 9, np.uint8))
    broken = dataclasses.replace(res, probabilities=res.probabilities[:5])  # does not match the labels
    with pytest.raises(ValueError, match="do not match"):
        write_npz(npz_path, broken, capture_id=capture_id)

    class Exploding:  # fails in the middle of the write, after the temporary file was opened
        def save(self, fh, **_):
            fh.write(b"half a png")
            raise OSError("disk full")

    from core.output import export

    with pytest.raises(OSError, match="disk full"):
        export._write_image(labels_path, Exploding())
    assert (labels_path.read_bytes(), npz_path.read_bytes()) == before
    assert stale_temp_files(tmp_path, "labels.png") == [] and stale_temp_files(tmp_path, "r.npz") == []
