"""Ximea imageMetadata XML, and the camera profiles derived from it."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.capture.camera_profiles import (
    THESIS_PROFILE_ID,
    list_profiles,
    load_profile,
    band_positions,
    profile_from_metadata,
    resolve_profile,
)
from core.errors import ProfileError
from core.capture.metadata import CaptureMetadata, build_ximea_xml, parse_ximea_xml

THESIS_CAMERA = "MQ022HG-IM-SM5X5-NIR"
GEOMETRY_KEYS = ("ActiveAreaWidth", "ActiveAreaHeight", "AbsoluteOffsetX", "AbsoluteOffsetY")
WAVELENGTHS = tuple(round(660.0 + 12.5 * i, 2) for i in range(25))

# Text that survives XML and the parser's whitespace trimming.
words = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="<>&"), min_size=1, max_size=20)
pairs = st.tuples(st.integers(0, 5000), st.integers(0, 5000))
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None, database=None)
@given(
    meta=st.builds(
        CaptureMetadata,
        camera_model=st.none() | words,
        serial=st.none() | words,
        exposure_us=st.none() | finite,
        gain_db=st.none() | finite,
        acquisition_time=st.none() | words,
        filter_offset_xy=st.none() | pairs,
        filter_size_wh=st.none() | pairs,
        pattern_wh=st.none() | st.tuples(st.integers(1, 8), st.integers(1, 8)),
        wavelengths_nm=st.none() | st.lists(finite, min_size=1, max_size=30).map(tuple),
        temperature_c=st.none() | finite,
        active_area_wh=st.none() | st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
        absolute_offset_xy=st.none() | pairs,
        spectral_range_nm=st.none() | st.tuples(finite, finite),
        api_context=st.none()
        | st.lists(
            st.tuples(st.sampled_from(["xiApiImg:", "xiApiPar:"]), st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True), words),
            min_size=1,
            max_size=4,
        ).map(lambda items: tuple((p + k, v) for p, k, v in items if k not in GEOMETRY_KEYS) or None),
    )
)
def test_build_then_parse_is_identity(meta):
    # A band index beyond the pattern is refused (tested below), so only consistent documents round-trip.
    assume(meta.pattern_wh is None or meta.wavelengths_nm is None or len(meta.wavelengths_nm) <= meta.pattern_wh[0] * meta.pattern_wh[1])
    assert parse_ximea_xml(build_ximea_xml(meta)) == meta


def test_parses_a_ximea_style_document():
    """Elements as Ximea software nests them, extra elements ignored, bands out of order."""
    text = """<?xml version="1.0" encoding="UTF-8"?>
    <imageMetadata>
      <device><device_name>MQ022HG-IM-SM5X5-NIR</device_name><device_sn>CAMAU1234</device_sn></device>
      <acquisition><exposure>40000</exposure><gain>1.5</gain><acq_time>2019-05-02T11:20:33</acq_time></acquisition>
      <hsiParams><sensor_calibration><filter_info><filter_zones>
        <filter_zone>
          <filter_area><offset_x>3</offset_x><offset_y>1</offset_y><width>2045</width><height>1085</height></filter_area>
          <pattern_width>5</pattern_width><pattern_height>5</pattern_height>
          <bands>
            <band><pattern_position_index>1</pattern_position_index><wavelength_nm>677.5</wavelength_nm></band>
            <band><pattern_position_index>0</pattern_position_index><wavelength_nm>665.25</wavelength_nm></band>
          </bands>
        </filter_zone>
      </filter_zones></filter_info></sensor_calibration></hsiParams>
    </imageMetadata>"""
    meta = parse_ximea_xml(text)
    assert meta == CaptureMetadata(
        camera_model=THESIS_CAMERA,
        serial="CAMAU1234",
        exposure_us=40000.0,
        gain_db=1.5,
        acquisition_time="2019-05-02T11:20:33",
        filter_offset_xy=(3, 1),
        filter_size_wh=(2045, 1085),
        pattern_wh=(5, 5),
        wavelengths_nm=(665.25, 677.5),
    )
    assert meta.has_calibration
    assert meta.to_dict()["filter_offset_xy"] == [3, 1]


def test_document_without_calibration_has_none():
    meta = parse_ximea_xml("<imageMetadata><camera_model>X</camera_model></imageMetadata>")
    assert meta.camera_model == "X" and not meta.has_calibration and meta.wavelengths_nm is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all", "not valid XML"),
        ("<imageMetadata><exposure>fast</exposure></imageMetadata>", r"<exposure> is not a number: 'fast'"),
        (
            "<imageMetadata><filter_zone><filter_area><offset_x>2.5</offset_x><offset_y>0</offset_y>"
            "</filter_area></filter_zone></imageMetadata>",
            r"<offset_x> is not an integer: '2.5'",
        ),
    ],
)
def test_malformed_documents_are_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ximea_xml(text)


def calibrated(camera_model: str | None, offset=(4, 2), size=(2045, 1085), wavelengths=WAVELENGTHS) -> CaptureMetadata:
    return CaptureMetadata(
        camera_model=camera_model,
        filter_offset_xy=offset,
        filter_size_wh=size,
        pattern_wh=(5, 5),
        wavelengths_nm=wavelengths,
    )


def test_thesis_profile_is_built_in():
    profile = load_profile(THESIS_PROFILE_ID)
    assert THESIS_PROFILE_ID in list_profiles()
    assert profile.offset_xy == (0, 0) and profile.area_wh == (2045, 1085) and profile.pattern_wh == (5, 5)
    assert profile.cube_shape == (217, 409, 25) and profile.min_frame_shape == (1085, 2045)
    assert profile.scm.shape == (25, 25) and profile.scm.dtype == np.float32
    assert not np.allclose(profile.scm, np.eye(25))  # the thesis matrix, not a placeholder
    assert len(profile.wavelengths_nm) == 25


def test_thesis_camera_and_geometry_resolve_to_thesis_scm_at_metadata_offset():
    profile = resolve_profile(calibrated(THESIS_CAMERA))
    thesis = load_profile(THESIS_PROFILE_ID)
    assert profile.id == THESIS_PROFILE_ID
    np.testing.assert_array_equal(profile.scm, thesis.scm)
    assert profile.offset_xy == (4, 2)  # metadata is authoritative about where the filter sits
    # Per-position wavelengths carried through the SCM: output band i <- position band_positions(scm)[i].
    assert profile.wavelengths_nm == tuple(WAVELENGTHS[j] for j in band_positions(thesis.scm))
    assert not profile.wavelengths_nominal and "metadata" in profile.geometry_label


def test_unknown_camera_resolves_to_metadata_profile_with_identity_scm():
    profile = resolve_profile(calibrated("MQ022HG-IM-SM4X4-VIS", offset=(7, 9), size=(40, 30)))
    assert profile.id.startswith("metadata:")
    np.testing.assert_array_equal(profile.scm, np.eye(25, dtype=np.float32))
    assert profile.offset_xy == (7, 9) and profile.area_wh == (40, 30)
    assert profile.cube_shape == (6, 8, 25)
    assert profile.wavelengths_nm == WAVELENGTHS


def test_thesis_camera_with_another_readout_region_keeps_the_thesis_scm():
    # The SCM belongs to the camera's filters; the metadata's geometry belongs to the frame.
    profile = resolve_profile(calibrated(THESIS_CAMERA, offset=(5, 10), size=(1000, 500)))
    assert profile.id == THESIS_PROFILE_ID
    assert profile.offset_xy == (5, 10) and profile.area_wh == (1000, 500) and profile.cube_shape == (100, 200, 25)
    np.testing.assert_array_equal(profile.scm, load_profile(THESIS_PROFILE_ID).scm)


def test_no_metadata_means_thesis_profile_and_explicit_name_wins():
    assert resolve_profile(None).id == THESIS_PROFILE_ID
    assert resolve_profile(CaptureMetadata(camera_model="X")).id == THESIS_PROFILE_ID
    named = resolve_profile(calibrated("OTHER", offset=(7, 9)), THESIS_PROFILE_ID)
    assert named.id == THESIS_PROFILE_ID and named.offset_xy == (0, 0)


@pytest.mark.parametrize("name", ["no-such-camera", "../cameras/thesis-sm5x5-nir", ""])
def test_unknown_profile_name_lists_known_ones(name):
    with pytest.raises(ProfileError, match=rf"unknown camera profile .*known: .*{THESIS_PROFILE_ID}"):
        load_profile(name)


def test_profile_from_metadata_validates():
    with pytest.raises(ProfileError, match="no filter-area calibration"):
        profile_from_metadata(CaptureMetadata(camera_model="X"))
    with pytest.raises(ProfileError, match=r"SCM shape \(24, 24\) does not match 25 bands"):
        profile_from_metadata(calibrated("X"), scm=np.eye(24))
    with pytest.raises(ProfileError, match="3 wavelengths for 25 bands"):
        profile_from_metadata(calibrated("X", wavelengths=(1.0, 2.0, 3.0)))
    with pytest.raises(ProfileError, match="smaller than one"):
        profile_from_metadata(calibrated("X", size=(4, 30)))
    scm = np.arange(625, dtype=np.float64).reshape(25, 25)
    profile = profile_from_metadata(calibrated("X"), scm=scm)
    assert profile.scm.dtype == np.float32 and profile.scm[3, 4] == 79.0
