"""The training-data description a model file records: profile, wavelengths, OOD."""
from __future__ import annotations

import pytest

from core.capture.camera_profiles import load_profile
from core.dataset.folders import read_dataset, write_capture_folder
from core.errors import DatasetError
from core.capture.metadata import CaptureMetadata
from core.spectral.ood import ood_mask
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from core.training.data_description import describe_training_data


def dataset(root, seeds, *, shift_nm=0.0):
    for seed in seeds:
        c = generate_capture(seed=seed, patient="ID18", profile=small_profile())
        meta = c.metadata
        if shift_nm and seed == seeds[-1]:
            meta = CaptureMetadata(**{**meta.__dict__, "wavelengths_nm": tuple(w + shift_nm for w in meta.wavelengths_nm)})
        write_capture_folder(root, f"ID0018C{seed + 1:02d}", c.raw, c.dark, c.white, c.labels, metadata=meta)
    return read_dataset(root)


def test_description_of_a_synthetic_dataset(tmp_path):
    captures = dataset(tmp_path / "d", [0, 1])
    description = describe_training_data(captures)
    assert description.profile_id == "synthetic-small"
    assert description.wavelengths_nm == pytest.approx(load_profile("synthetic-small").wavelengths_nm)
    other = generate_capture(seed=7, patient="ID18", profile=small_profile())
    cube = preprocess_capture(other.to_capture())
    assert ood_mask(description.ood, cube)[cube.valid].mean() < 0.1


def test_captures_of_another_calibration_are_refused(tmp_path):
    with pytest.raises(DatasetError, match=r"ID0018C02: band wavelengths differ from those of ID0018C01 by more than 5 nm"):
        describe_training_data(dataset(tmp_path / "d", [0, 1], shift_nm=12.0))
