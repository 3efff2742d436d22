"""Reading Ximea raw TIFFs and capture triplets: round trips, reference look-up, and every kind of bad file."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from core.capture.camera_profiles import THESIS_PROFILE_ID, band_wavelengths, load_profile
from core.capture.files import (
    capture_from_bytes,
    capture_id_for,
    find_references,
    frame_to_bytes,
    load_capture,
    read_frame,
    write_frame,
)
from core.errors import CaptureError, ProfileError
from core.capture.metadata import CaptureMetadata
from core.spectral.chain import preprocess_capture

THESIS_META = CaptureMetadata(
    camera_model="MQ022HG-IM-SM5X5-NIR",
    serial="CAMAU1234",
    exposure_us=40000.0,
    gain_db=0.0,
    acquisition_time="2019-05-02T11:20:33",
    filter_offset_xy=(0, 0),
    filter_size_wh=(2045, 1085),
    pattern_wh=(5, 5),
    wavelengths_nm=tuple(665.0 + 12.29 * i for i in range(25)),
)


def write_triplet(folder, names=("raw.tif", "dark.tif", "white.tif"), shape=(40, 60), *, metadata=None, seed=0):
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(600, 1023, size=shape, dtype=np.uint16)
    raw = rng.integers(100, 600, size=shape, dtype=np.uint16)
    paths = [write_frame(folder / name, frame, metadata) for name, frame in zip(names, (raw, dark, white))]
    return paths, (raw, dark, white)


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_frame_and_metadata_round_trip_through_tiff(tmp_path, dtype):
    frame = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, size=(1088, 2048)).astype(dtype)
    path = write_frame(tmp_path / "ID0001C01.tif", frame, THESIS_META)
    # The XML really is in the ImageDescription tag, where Ximea software puts it.
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].description.lstrip().startswith("<?xml")
        assert "<imageMetadata>" in tif.pages[0].description
    read, metadata = read_frame(path)
    assert read.dtype == dtype and read.shape == (1088, 2048)
    np.testing.assert_array_equal(read, frame)
    assert metadata == THESIS_META


def test_bytes_round_trip_and_frame_without_metadata(tmp_path):
    frame = np.arange(35 * 45, dtype=np.uint16).reshape(35, 45)
    read, metadata = read_frame(frame_to_bytes(frame, THESIS_META), name="upload")
    np.testing.assert_array_equal(read, frame)
    assert metadata == THESIS_META
    _, none = read_frame(write_frame(tmp_path / "plain.tif", frame))
    assert none is None


def test_single_plane_3d_page_is_read_as_2d(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.ones((1, 20, 30), dtype=np.uint16))
    frame, _ = read_frame(tmp_path / "one.tif")
    assert frame.shape == (20, 30)


# --- references --------------------------------------------------------------------------------


def test_references_found_by_nemesis_names(tmp_path):
    paths, _ = write_triplet(tmp_path, ("ID0018C05.tif", "ID0018CD05.tif", "ID0018CW05.tif"))
    dark, white = find_references(paths[0])
    assert (dark.name, white.name) == ("ID0018CD05.tif", "ID0018CW05.tif")
    capture = load_capture(paths[0])
    assert capture.capture_id == "ID0018C05"
    assert (capture.dark_path, capture.white_path) == (paths[1], paths[2])
    np.testing.assert_array_equal(capture.white, tifffile.imread(paths[2]))


def test_references_found_by_nemesis_names_with_tiff_extension(tmp_path):
    paths, _ = write_triplet(tmp_path, ("ID0007C12.tiff", "ID0007CD12.tiff", "ID0007CW12.tiff"))
    assert [p.name for p in find_references(paths[0])] == ["ID0007CD12.tiff", "ID0007CW12.tiff"]


def test_references_found_in_dataset_folder(tmp_path):
    folder = tmp_path / "ID0030C02"
    folder.mkdir()
    paths, frames = write_triplet(folder)
    capture = load_capture(paths[0])
    assert capture.capture_id == "ID0030C02" == capture_id_for(paths[0])
    assert capture.dark_path == folder / "dark.tif" and capture.white_path == folder / "white.tif"
    np.testing.assert_array_equal(capture.dark, frames[1])


def test_explicit_references_override_names(tmp_path):
    paths, frames = write_triplet(tmp_path, ("scene.tif", "d.tif", "w.tif"))
    capture = load_capture(paths[0], paths[1], paths[2])
    assert capture.capture_id == "scene"
    np.testing.assert_array_equal(capture.raw, frames[0])


def test_capture_files_fixture_triplet_preprocesses_to_thesis_cube(capture_files):
    raw_path = capture_files(metadata=THESIS_META)
    capture = load_capture(raw_path)
    cube = preprocess_capture(capture)
    assert cube.data.shape == (217, 409, 25) and cube.profile_id == THESIS_PROFILE_ID
    expected = band_wavelengths(load_profile(THESIS_PROFILE_ID).scm, THESIS_META.wavelengths_nm)
    np.testing.assert_array_equal(cube.wavelengths_nm, np.float32(expected))
    assert not cube.wavelengths_nominal


def test_metadata_profile_with_offset_is_used_for_files(tmp_path):
    """An unknown camera whose metadata puts a 30x20 filter area at (7, 3) of a 28x40 frame."""
    meta = CaptureMetadata(camera_model="OTHER-CAM", filter_offset_xy=(7, 3), filter_size_wh=(30, 20), pattern_wh=(5, 5))
    paths, (raw, dark, white) = write_triplet(tmp_path, shape=(28, 40), metadata=meta)
    cube = preprocess_capture(load_capture(paths[0]))
    assert cube.data.shape == (4, 6, 25) and cube.profile_id == "metadata:OTHER-CAM"
    # Identity SCM: band 7 of cube pixel (1, 2) is the reflectance at (3 + 5 + 1, 7 + 10 + 2), normalised.
    y, x = 3 + 5 * 1 + 7 // 5, 7 + 5 * 2 + 7 % 5
    spectrum = [
        (float(raw[3 + 5 + b // 5, 17 + b % 5]) - float(dark[3 + 5 + b // 5, 17 + b % 5]))
        / (float(white[3 + 5 + b // 5, 17 + b % 5]) - float(dark[3 + 5 + b // 5, 17 + b % 5]))
        for b in range(25)
    ]
    rms = np.sqrt(np.mean(np.square(spectrum)))
    expected = (float(raw[y, x]) - float(dark[y, x])) / (float(white[y, x]) - float(dark[y, x])) / rms
    assert cube.data[1, 2, 7] == pytest.approx(expected, abs=1e-5)


# --- bad input: each names the file and the problem ------------------------------------------------


def test_not_a_tiff(tmp_path):
    path = tmp_path / "ID0001C01.tif"
    path.write_text("this is a PNG, honestly")
    with pytest.raises(CaptureError, match=r"ID0001C01\.tif: not a TIFF file$") as err:
        read_frame(path)
    assert err.value.path == str(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tif"
    path.touch()
    with pytest.raises(CaptureError, match=r"empty\.tif: empty file, not a TIFF$"):
        read_frame(path)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_tiff(tmp_path, keep):
    data = frame_to_bytes(np.ones((200, 300), dtype=np.uint16))
    path = tmp_path / "cut.tif"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CaptureError, match=r"cut\.tif: truncated or corrupt TIFF"):
        read_frame(path)


def test_header_cut_short_is_reported_without_stderr_noise(tmp_path, capfd):
    """tifffile logs some damage instead of raising; the CLI must still print one line only."""
    path = tmp_path / "header.tif"
    path.write_bytes(frame_to_bytes(np.ones((20, 30), dtype=np.uint16))[:8])
    with pytest.raises(CaptureError, match=r"header\.tif: TIFF holds no image"):
        read_frame(path)
    path.write_bytes(frame_to_bytes(np.ones((20, 30), dtype=np.uint16))[:4])
    with pytest.raises(CaptureError, match=r"header\.tif: truncated or corrupt TIFF"):
        read_frame(path)
    assert capfd.readouterr().err == ""


def test_3d_tiff(tmp_path):
    volume = np.zeros((3, 20, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planes.tif", volume, photometric="minisblack", planarconfig="separate")
    with pytest.raises(CaptureError, match=r"planes\.tif: expected a 2-D frame, got shape \(3, 20, 30\)"):
        read_frame(tmp_path / "planes.tif")
    tifffile.imwrite(tmp_path / "stack.tif", volume, photometric="minisblack")  # one page per plane
    with pytest.raises(CaptureError, match=r"stack\.tif: holds 3 pages; expected one 2-D frame"):
        read_frame(tmp_path / "stack.tif")


def test_rgb_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "photo.tif", np.zeros((20, 30, 3), dtype=np.uint8), photometric="rgb")
    with pytest.raises(CaptureError, match=r"photo\.tif: expected a 2-D frame"):
        read_frame(tmp_path / "photo.tif")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint32])
def test_unsupported_pixel_type(tmp_path, dtype):
    tifffile.imwrite(tmp_path / "float.tif", np.zeros((20, 30), dtype=dtype))
    with pytest.raises(CaptureError, match=rf"float\.tif: unsupported pixel type {np.dtype(dtype)}"):
        read_frame(tmp_path / "float.tif")


def test_bad_metadata_xml(tmp_path):
    tifffile.imwrite(
        tmp_path / "meta.tif", np.zeros((20, 30), np.uint16), description="<imageMetadata><gain>x</gain></imageMetadata>"
    )
    with pytest.raises(CaptureError, match=r"meta\.tif: bad Ximea metadata: .*<gain> is not a number"):
        read_frame(tmp_path / "meta.tif")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CaptureError, match=r"nope\.tif: file not found$"):
        read_frame(tmp_path / "nope.tif")
    with pytest.raises(CaptureError, match="is a folder"):
        read_frame(tmp_path)


def test_references_of_another_shape(tmp_path):
    paths, _ = write_triplet(tmp_path, ("ID0001C01.tif", "ID0001CD01.tif", "ID0001CW01.tif"))
    write_frame(paths[2], np.ones((40, 61), dtype=np.uint16))
    with pytest.raises(CaptureError, match=r"ID0001CW01\.tif: white reference shape \(40, 61\) differs from raw frame \(40, 60\)"):
        load_capture(paths[0])
    with pytest.raises(CaptureError, match=r"^dark: dark reference shape \(4, 4\) differs"):
        capture_from_bytes(
            frame_to_bytes(np.ones((5, 5), np.uint16)),
            frame_to_bytes(np.ones((4, 4), np.uint16)),
            frame_to_bytes(np.ones((5, 5), np.uint16)),
        )


def test_white_not_above_dark_in_files_is_masked(tmp_path):
    shape = (1085, 2045)
    dark = np.full(shape, 40, dtype=np.uint16)
    white = np.full(shape, 900, dtype=np.uint16)
    white[500:503, 1000:1003] = 40  # a dead patch of the white reference
    raw = np.full(shape, 300, dtype=np.uint16)
    for name, frame in (("ID0002C01.tif", raw), ("ID0002CD01.tif", dark), ("ID0002CW01.tif", white)):
        write_frame(tmp_path / name, frame)
    cube = preprocess_capture(load_capture(tmp_path / "ID0002C01.tif"))
    assert np.isfinite(cube.data).all()
    assert (~cube.valid).sum() == 1 and not cube.valid[100, 200]
    assert (cube.data[100, 200] == 0).all()


def test_frame_too_small_for_filter_area(tmp_path):
    paths, _ = write_triplet(tmp_path, ("ID0003C01.tif", "ID0003CD01.tif", "ID0003CW01.tif"), shape=(1000, 2048))
    with pytest.raises(CaptureError, match=r"ID0003C01\.tif: frame 1000x2048 is too small for the filter area of .*thesis-sm5x5-nir"):
        preprocess_capture(load_capture(paths[0]))


def test_unknown_profile_name(tmp_path):
    paths, _ = write_triplet(tmp_path, ("ID0004C01.tif", "ID0004CD01.tif", "ID0004CW01.tif"))
    with pytest.raises(ProfileError, match=r"ID0004C01\.tif: unknown camera profile 'hyper-9000'"):
        preprocess_capture(load_capture(paths[0]), profile_name="hyper-9000")


@pytest.mark.parametrize("missing", ["dark", "white"])
def test_missing_reference(tmp_path, missing):
    paths, _ = write_triplet(tmp_path, ("ID0005C01.tif", "ID0005CD01.tif", "ID0005CW01.tif"))
    paths[1 if missing == "dark" else 2].unlink()
    expected = "ID0005CD01.tif" if missing == "dark" else "ID0005CW01.tif"
    with pytest.raises(CaptureError, match=rf"ID0005C01\.tif: {missing} reference {expected} not found"):
        load_capture(paths[0])


def test_reference_not_found_by_name(tmp_path):
    paths, _ = write_triplet(tmp_path, ("scene.tif", "d.tif", "w.tif"))
    with pytest.raises(CaptureError, match=r"scene\.tif: cannot find references by name"):
        load_capture(paths[0])


def test_explicit_reference_missing(tmp_path):
    paths, _ = write_triplet(tmp_path, ("scene.tif", "d.tif", "w.tif"))
    with pytest.raises(CaptureError, match=r"gone\.tif: file not found"):
        load_capture(paths[0], tmp_path / "gone.tif", paths[2])


_SAMPLE = frame_to_bytes(np.arange(40 * 30, dtype=np.uint16).reshape(40, 30), THESIS_META)


@settings(max_examples=150, deadline=None, database=None)
@given(
    cut=st.integers(0, len(_SAMPLE) - 1),
    flips=st.lists(st.tuples(st.integers(0, len(_SAMPLE) - 1), st.integers(0, 255)), max_size=6),
    truncate=st.booleans(),
)
def test_damaged_tiff_bytes_give_capture_error_or_a_frame(cut, flips, truncate):
    """Whatever the damage, reading either succeeds with a 2-D uint8/uint16 frame or raises CaptureError."""
    data = bytearray(_SAMPLE[:cut] if truncate else _SAMPLE)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    try:
        frame, _ = read_frame(bytes(data), name="damaged")
    except CaptureError as exc:
        assert str(exc).startswith("damaged: ") and "\n" not in str(exc)
    else:
        assert frame.ndim == 2 and frame.dtype in (np.uint8, np.uint16)


def test_thesis_profile_needs_no_file():
    # Guard for the tests above: the built-in profile loads without any capture.
    assert load_profile(THESIS_PROFILE_ID).n_bands == 25
