"""Synthetic captures: format, determinism, ground truth, and the inverted preprocessing chain."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile, profile_from_metadata, resolve_profile
from core.labels.maps import label_counts
from core.capture.metadata import CaptureMetadata
from core.spectral.chain import preprocess
from core.capture.synthetic.captures import (
    SMALL_PROFILE_ID,
    generate_capture,
    patient_class_means,
    small_profile,
    source_patient,
    thesis_label_counts,
)
from resources import SPECTRA_DIR

CLASS_KEYS = {1: "healthy", 2: "tumor", 3: "venous_blood", 4: "arterial_blood", 5: "dura_mater"}


@pytest.fixture(scope="module")
def full():
    """One full-resolution thesis-profile capture (the only one this module generates)."""
    return generate_capture(seed=11, patient="ID30")


@pytest.fixture(scope="module")
def full_cube(full):
    return preprocess(full.raw, full.dark, full.white, load_profile(THESIS_PROFILE_ID))


def test_full_capture_frames_look_like_a_ximea_triplet(full):
    for frame in (full.raw, full.dark, full.white):
        assert frame.shape == (1088, 2048)
        assert frame.dtype == np.uint16
        assert frame.max() <= 1023
    area = (slice(0, 1085), slice(0, 2045))
    assert 35 <= np.median(full.dark) <= 75
    white = full.white[area].astype(np.float64)
    assert 600 <= np.percentile(white, 1) and np.percentile(white, 99) <= 1023
    assert white.mean() > 750
    # Vignetting: the white reference is darker in the corners than in the centre.
    assert white[:100, :100].mean() < white[490:590, 970:1070].mean() - 50
    # Outside the filter area every frame is dark-ish.
    assert full.white[1085:, :].max() < 120 and full.raw[:, 2045:].max() < 120
    raw = full.raw[area].astype(np.float64)
    dark = full.dark[area].astype(np.float64)
    assert np.all(raw >= dark - 10) and np.all(raw <= white + 10)


def test_metadata_resolves_to_the_generating_profile(full):
    assert full.metadata.camera_model == load_profile(THESIS_PROFILE_ID).camera_model
    resolved = resolve_profile(full.metadata)
    assert resolved == load_profile(THESIS_PROFILE_ID)
    small = generate_capture(seed=1, profile=small_profile())
    assert small.metadata.camera_model != full.metadata.camera_model
    resolved = resolve_profile(small.metadata)
    assert resolved == small_profile() and resolved.id == SMALL_PROFILE_ID
    np.testing.assert_array_equal(resolved.scm, load_profile(THESIS_PROFILE_ID).scm)
    # Other sizes: the camera model selects the profile (and SCM), the metadata the geometry.
    other = generate_capture(seed=1, profile=small_profile(24, 36))
    for resolved in (resolve_profile(other.metadata),):
        expected = small_profile(24, 36)
        assert resolved.id == SMALL_PROFILE_ID and resolved.cube_shape == expected.cube_shape == (24, 36, 25)
        assert resolved.offset_xy == expected.offset_xy
        np.testing.assert_array_equal(resolved.scm, expected.scm)


def test_preprocessing_gives_the_generated_spectra_back(full, full_cube):
    assert full_cube.valid.all()
    error = np.abs(full_cube.data - full.spectra)
    # Shot noise is ~1-2 % per band, amplified a little by the SCM.
    assert np.median(error) < 0.03
    assert np.percentile(error, 99) < 0.15


def test_noiseless_capture_round_trips_to_quantisation():
    capture = generate_capture(seed=5, profile=small_profile(), noise=False)
    cube = preprocess(capture.raw, capture.dark, capture.white, small_profile())
    assert cube.valid.all()
    np.testing.assert_allclose(cube.data, capture.spectra, atol=0.02)


def test_class_means_match_the_patient_statistics(full, full_cube):
    spec = json.loads((SPECTRA_DIR / "class_spectra.json").read_text())["classes"]
    source = source_patient("ID30")
    for class_id, key in CLASS_KEYS.items():
        region = full.truth == class_id
        n = int(region.sum())
        assert n >= 100, f"class {class_id} has only {n} scene pixels"
        measured = full_cube.data[region].mean(axis=0)
        std = np.asarray(spec[key]["std"])
        # Half of the variation is spatially smooth (~2 px), so about n/25 independent samples.
        tolerance = 0.01 + 4 * std.max() / np.sqrt(n / 25)
        np.testing.assert_allclose(measured, full.class_means[class_id], atol=tolerance)
        # The patient's means are the source patient's plus a small shift.
        np.testing.assert_allclose(full.class_means[class_id], spec[key]["per_patient"][source]["mean"], atol=0.08)


def test_classes_overlap_like_tissue_but_are_separable(full):
    """A nearest-mean classifier on the noiseless spectra is far from perfect but far above chance."""
    means = np.stack([full.class_means[c] for c in range(1, 6)])
    pixels = full.truth > 0
    spectra = full.spectra[pixels]
    predicted = np.argmin(((spectra[:, None, :] - means[None]) ** 2).sum(-1), axis=1) + 1
    truth = full.truth[pixels]
    per_class = [np.mean(predicted[truth == c] == c) for c in range(1, 6)]
    assert 0.2 < min(per_class) and max(per_class) > 0.5
    assert np.mean(predicted == truth) < 0.97


def test_patients_differ_and_stay_consistent():
    a, b = patient_class_means("ID18"), patient_class_means("ID25")
    assert max(np.abs(a[c] - b[c]).max() for c in range(1, 6)) > 0.01
    again = patient_class_means("ID18")
    for c in range(1, 6):
        np.testing.assert_array_equal(a[c], again[c])
    # Patients sharing a source patient still differ by their own shift.
    assert source_patient("ID18") == source_patient("ID33")
    assert np.abs(patient_class_means("ID33")[1] - a[1]).max() > 0.002


def test_full_resolution_labels_follow_table_3_1(full):
    counts = label_counts(full.labels)
    expected = dict(zip(range(1, 6), thesis_label_counts()["ID30"]))
    for class_id, n in expected.items():
        assert abs(counts[class_id] - n) <= 0.1 * n, (class_id, counts[class_id], n)


def test_labels_are_sparse_blobs_inside_the_truth(full):
    labelled = full.labels > 0
    np.testing.assert_array_equal(full.labels[labelled], full.truth[labelled])
    for class_id in range(1, 6):
        strokes = full.labels == class_id
        region = full.truth == class_id
        assert strokes.sum() < 0.6 * region.sum()
        # Strokes are a few blobs (segments along vessels), not scattered pixels.
        _, n_blobs = ndimage.label(strokes, structure=np.ones((3, 3)))  # 8-connected: thin diagonal vessels
        assert 1 <= n_blobs <= 25 and strokes.sum() / n_blobs >= 5, (class_id, n_blobs, strokes.sum())


def test_scene_has_a_dura_rim_a_compact_tumour_and_thin_vessels(full):
    truth = full.truth
    h, w = truth.shape
    # Dura is at the rim of the exposed brain: far from the centre, and the centre is brain.
    rows, cols = np.nonzero(truth == 5)
    centre_distance = np.hypot((rows - h / 2) / h, (cols - w / 2) / w)
    assert np.median(centre_distance) > 0.3
    assert truth[h // 2 - 5 : h // 2 + 5, w // 2 - 5 : w // 2 + 5].min() >= 1
    # The tumour is mostly one piece.
    tumour_parts, n = ndimage.label(truth == 2)
    assert n >= 1 and np.bincount(tumour_parts.ravel())[1:].max() > 0.8 * (truth == 2).sum()
    # Vessels are lines: their pixels lie close to the vessel edge.
    for class_id in (3, 4):
        depth = ndimage.distance_transform_edt(truth == class_id)
        assert np.median(depth[truth == class_id]) <= 3


def test_small_profile_shape_and_scaled_counts():
    profile = small_profile()
    assert profile.cube_shape == (40, 60, 25)
    assert profile.area_wh == (300, 200) and profile.offset_xy == (0, 0) and profile.pattern_wh == (5, 5)
    assert profile.wavelengths_nm == load_profile(THESIS_PROFILE_ID).wavelengths_nm
    capture = generate_capture(seed=3, patient="ID18", profile=profile)
    assert capture.raw.shape == (203, 303)
    assert capture.labels.shape == capture.truth.shape == (40, 60)
    counts = label_counts(capture.labels)
    scale = 40 * 60 / (217 * 409)
    for class_id, n in zip(range(1, 6), thesis_label_counts()["ID18"]):
        assert counts[class_id] == max(round(n * scale), 4)


def test_same_seed_same_arrays_other_seed_other_arrays():
    a = generate_capture(seed=9, patient="ID34", profile=small_profile())
    b = generate_capture(seed=9, patient="ID34", profile=small_profile())
    c = generate_capture(seed=10, patient="ID34", profile=small_profile())
    for name in ("raw", "dark", "white", "labels", "truth", "spectra", "brightness"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.metadata == b.metadata
    assert not np.array_equal(a.raw, c.raw) and not np.array_equal(a.truth, c.truth)


def test_explicit_label_counts_and_capture_ids():
    capture = generate_capture(seed=2, patient="ID47C2", label_counts={1: 50, 2: 30, 5: 20}, profile=small_profile())
    assert label_counts(capture.labels) == {1: 50, 2: 30, 3: 0, 4: 0, 5: 20}
    assert capture.capture_id == "ID0047C02"
    assert generate_capture(seed=2, patient="P7", profile=small_profile()).capture_id == "P7C01"


def test_metadata_profile_with_offset_round_trips():
    """A camera whose filter area starts at (3, 2) on a larger sensor: preprocessing still inverts."""
    meta = CaptureMetadata(
        camera_model="other",
        filter_offset_xy=(3, 2),
        filter_size_wh=(150, 100),
        pattern_wh=(5, 5),
        wavelengths_nm=tuple(float(x) for x in range(600, 850, 10)),
    )
    profile = profile_from_metadata(meta, sensor_shape=(110, 160))
    capture = generate_capture(seed=4, profile=profile, noise=False)
    assert capture.raw.shape == (110, 160)
    cube = preprocess(capture.raw, capture.dark, capture.white, resolve_profile(capture.metadata))
    np.testing.assert_allclose(cube.data, capture.spectra, atol=0.02)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 0, "patient": ""}, "patient"),
        ({"seed": 0, "label_counts": {9: 3}}, "unknown class"),
        ({"seed": 0, "label_counts": {1: -3}}, ">= 0"),
        ({"seed": 0, "label_counts": [1, 2]}, "5 counts"),
        ({"seed": 0, "label_counts": {1: 10**6}}, "exceeds"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_capture(**{"profile": small_profile(), **kwargs})


def test_small_profile_rejects_empty_sizes():
    with pytest.raises(ValueError, match="height and width"):
        small_profile(0, 10)


def test_nemesis_files_are_found_and_read_back(tmp_path):
    from core.capture.files import capture_id_for, load_capture

    capture = generate_capture(seed=5, patient="ID47", profile=small_profile())
    raw_path = capture.write_nemesis_files(tmp_path)
    assert raw_path.name == "ID0047C01.tif" and capture_id_for(raw_path) == capture.capture_id
    back = load_capture(raw_path)  # references found by the camera software's names
    assert back.dark_path.name == "ID0047CD01.tif" and back.white_path.name == "ID0047CW01.tif"
    for name in ("raw", "dark", "white"):
        np.testing.assert_array_equal(getattr(back, name), getattr(capture, name))
    assert back.metadata == capture.metadata
    assert capture.write_nemesis_files(tmp_path / ".", "ID0002C07").name == "ID0002C07.tif"
    with pytest.raises(ValueError, match="not a NEMESIS id"):
        capture.write_nemesis_files(tmp_path, "capture-1")
