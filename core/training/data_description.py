"""What a model file records about the data it was trained on, beyond its weights.

``describe_training_data(captures)`` preprocesses the training captures once more
(about 13 ms each at full sensor size) and returns the camera profile, the band
wavelengths the model expects, and the out-of-distribution description of the
labelled training spectra (:mod:`core.spectral.ood`). The model-saving path passes these
to :func:`core.model.files.save_model`, so classification can refuse a cube whose
bands differ and mark pixels unlike anything trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import DatasetError
from core.model.compatibility import WAVELENGTH_TOLERANCE_NM
from core.spectral.ood import OodDescription, fit_ood_from_cubes


@dataclass(frozen=True)
class TrainingDataDescription:
    profile_id: str
    wavelengths_nm: tuple[float, ...] | None  # (B,) nm; None when the captures carry none
    ood: OodDescription


def describe_training_data(captures) -> TrainingDataDescription:
    """Profile, wavelengths and OOD description of dataset captures (:class:`core.dataset.folders.DatasetCapture`).

    ``DatasetError`` when two captures' band wavelengths differ by more than the
    tolerance of :func:`core.model.compatibility.check_compatible` (one model, one camera calibration).
    """
    from core.training.samples import load_capture_data

    items, profile_id, wavelengths, first = [], None, None, None
    for capture in captures:
        cube = load_capture_data(capture)  # raw, cube or spectra capture
        if cube.spectra is not None:  # labelled spectra: a 1-pixel-wide "cube" of them
            spectra = cube.spectra
            items.append((spectra.data[:, None, :], spectra.class_ids[:, None], np.ones((len(spectra.data), 1), bool)))
        else:
            items.append((cube.cube, cube.labels, cube.valid))
        profile_id = profile_id or cube.profile_id
        if cube.wavelengths_nm is None:
            continue
        cube_nm = np.asarray(cube.wavelengths_nm, dtype=np.float64)
        if wavelengths is None:
            wavelengths, first = cube_nm, capture.capture_id
        elif cube_nm.shape != wavelengths.shape or np.abs(cube_nm - wavelengths).max() > WAVELENGTH_TOLERANCE_NM:
            raise DatasetError(
                capture.folder,
                f"band wavelengths differ from those of {first} by more than {WAVELENGTH_TOLERANCE_NM:g} nm; "
                "one model is trained on one camera calibration",
            )
    if not items:
        raise DatasetError(None, "no captures to describe")
    return TrainingDataDescription(
        profile_id=profile_id,
        wavelengths_nm=None if wavelengths is None else tuple(round(float(w), 3) for w in wavelengths),  # float32 noise off
        ood=fit_ood_from_cubes(items),
    )
