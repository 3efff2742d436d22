"""Real xiAPI files: every metadata field, region-of-interest frames, frames cut after capture."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.capture.camera_profiles import THESIS_PROFILE_ID, band_positions, load_profile, resolve_profile
from core.capture.files import load_capture, read_frame
from core.errors import CaptureError
from core.capture.metadata import parse_ximea_xml
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.ximea import REAL_POSITION_WAVELENGTHS, real_xml, write_real_frame


def test_every_field_of_a_real_document_is_read():
    meta = parse_ximea_xml(real_xml(absolute_xy=(0, 32), active_wh=(2048, 1024)))
    assert meta.camera_model == "MQ022HG-IM-SM5X5-NIR" and meta.serial == "CAMAU1912007"
    assert meta.exposure_us == 40000.0 and meta.gain_db == 0.0 and meta.temperature_c == 38.25
    assert meta.acquisition_time == "2019-05-02T11:20:33.123"
    assert meta.active_area_wh == (2048, 1024) and meta.absolute_offset_xy == (0, 32)
    assert meta.filter_offset_xy == (0, 0) and meta.filter_size_wh == (2045, 1085)
    assert meta.pattern_wh == (5, 5)  # the MOSAIC zone, not the TILED one beside it
    assert meta.spectral_range_nm == (665.0, 960.0)
    # Primary (order 1) peaks by the pattern_position_index ATTRIBUTE, even where order 2 is listed first.
    assert meta.wavelengths_nm == REAL_POSITION_WAVELENGTHS
    assert dict(meta.api_context)["xiApiPar:SensorBitDepth"] == "10"
    assert "xiApiImg:ActiveAreaWidth" not in dict(meta.api_context)  # parsed into its field


def test_real_wavelengths_travel_through_the_scm():
    meta = parse_ximea_xml(real_xml())
    profile = resolve_profile(meta)
    positions = band_positions(load_profile(THESIS_PROFILE_ID).scm)
    assert profile.id == THESIS_PROFILE_ID and not profile.wavelengths_nominal
    assert profile.wavelengths_nm == tuple(REAL_POSITION_WAVELENGTHS[j] for j in positions)


def test_thesis_scm_band_positions_follow_the_stated_rule():
    scm = load_profile(THESIS_PROFILE_ID).scm
    positions = band_positions(scm)
    assert sorted(positions.tolist()) == list(range(25))  # one position per band
    dominant = np.abs(scm).argmax(axis=1)
    agree = positions == dominant
    # Rows 23 and 24 share dominant position 3: 24 keeps it, 23 takes the unclaimed position 4.
    assert agree.sum() == 24 and positions[23] == 4 and positions[24] == dominant[24] == dominant[23] == 3
    # The mosaic's rows reversed: output rows 0-4 come from pattern row 4, and so on.
    assert positions[:20].tolist() == [20, 21, 22, 23, 24, 15, 16, 17, 18, 19, 10, 11, 12, 13, 14, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern_wh": (100, 100)}, r"mosaic pattern 100x100 is outside 1\.\.16"),
        ({"pattern_wh": (300, 300)}, r"mosaic pattern 300x300 is outside"),
        ({"filter_xywh": (0, 0, 10**7, 5)}, "filter-area size"),
        ({"pattern_wh": (2, 2)}, r"pattern_position_index 4 is outside 0\.\.3"),
    ],
)
def test_crafted_sizes_are_bounded_before_allocating(kwargs, message):
    with pytest.raises(ValueError, match=message):
        parse_ximea_xml(real_xml(**kwargs))


def test_frame_cut_after_capture_is_refused_naming_both_shapes(tmp_path):
    frame = np.zeros((1000, 2048), np.uint16)  # metadata still says 1088 rows
    path = write_real_frame(tmp_path / "ID0001C01.tif", frame)
    with pytest.raises(CaptureError, match=r"ID0001C01\.tif: frame is 1000x2048 .* ActiveArea is 1088x2048"):
        read_frame(path)


def _write_triplet(folder, capture, rows: slice, *, absolute_y: int, profile):
    """Frames rows ``rows`` of a full-sensor synthetic capture, with real ROI metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    ox, oy = profile.offset_xy
    for name, frame in (("raw", capture.raw), ("dark", capture.dark), ("white", capture.white)):
        part = frame[rows]
        write_real_frame(
            folder / f"{name}.tif",
            part,
            model=profile.camera_model,
            active_wh=(part.shape[1], part.shape[0]),
            absolute_xy=(0, absolute_y),
            filter_xywh=(ox, oy, *profile.area_wh),
        )
    return folder / "raw.tif"


@pytest.fixture(scope="module")
def full_capture():
    profile = small_profile(24, 16).with_offset((1, 2))  # filter area starts at sensor row 2
    return generate_capture(seed=3, profile=profile), profile


@settings(max_examples=25, deadline=None, database=None)
@given(top=st.integers(0, 60), height=st.integers(5, 60))
def test_region_of_interest_gives_the_rows_of_the_full_frame_cube(tmp_path_factory, full_capture, top, height):
    capture, profile = full_capture
    folder = tmp_path_factory.mktemp("roi")
    full = preprocess_capture(load_capture(_write_triplet(folder / "full", capture, slice(None), absolute_y=0, profile=profile)))
    rows = slice(top, min(top + height, capture.raw.shape[0]))
    roi_path = _write_triplet(folder / "roi", capture, rows, absolute_y=top, profile=profile)
    oy = profile.offset_xy[1]
    first = max(0, -((oy - top) // 5))  # first whole pattern row at or below sensor row `top`
    last = min(profile.cube_shape[0], (rows.stop - oy) // 5)
    if last <= first:
        with pytest.raises(CaptureError, match="holds no whole 5x5 pattern"):
            preprocess_capture(load_capture(roi_path))
        return
    roi = preprocess_capture(load_capture(roi_path))
    assert roi.origin_rc == (first, 0)
    np.testing.assert_array_equal(roi.data, full.data[first:last])
    np.testing.assert_array_equal(roi.valid, full.valid[first:last])


def test_sensor_rows_32_to_1055_of_the_thesis_camera(tmp_path):
    """The issue's example: a 1024-row ROI is not "too small"; it gives cube rows 7..210."""
    rng = np.random.default_rng(0)
    shape = (1024, 2048)
    dark = rng.integers(30, 60, shape, dtype=np.uint16)
    white = (dark + 800).astype(np.uint16)
    raw = (dark + 400).astype(np.uint16)
    for name, frame in (("raw", raw), ("dark", dark), ("white", white)):
        write_real_frame(tmp_path / f"{name}.tif", frame, active_wh=(2048, 1024), absolute_xy=(0, 32))
    cube = preprocess_capture(load_capture(tmp_path / "raw.tif"))
    assert cube.origin_rc == (7, 0) and cube.data.shape == (204, 409, 25)
    assert "metadata" in cube.geometry_source


def test_synthetic_rgb_picks_bands_by_real_wavelength():
    from core.spectral.rgb import DEFAULT_RGB_NM, choose_rgb_bands

    profile = resolve_profile(parse_ximea_xml(real_xml()))
    wavelengths = np.asarray(profile.wavelengths_nm)
    picked = choose_rgb_bands(wavelengths, 25)
    for index, target in zip(picked, DEFAULT_RGB_NM):
        assert abs(wavelengths[index] - target) == np.abs(wavelengths - target).min()


def test_calibration_note_says_whose_scm_a_capture_gets():
    from dataclasses import replace

    from core.capture.camera_profiles import calibration_note, profile_from_metadata

    thesis = load_profile(THESIS_PROFILE_ID)
    assert calibration_note(thesis, "CAMAU1912007").startswith("model-level calibration: SCM of profile thesis-sm5x5-nir")
    assert "serial unknown" in calibration_note(thesis, None)
    own = replace(thesis, calibrated_serial="CAMAU1912007")
    assert calibration_note(own, "CAMAU1912007").startswith("device calibration")
    other = profile_from_metadata(parse_ximea_xml(real_xml(model="OTHER-CAM")))
    assert "identity SCM" in calibration_note(other, "X")
