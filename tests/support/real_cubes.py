"""Real-tissue cubes from the NEMESIS files of ``../shared/data/nemesis-public`` (never shipped).

The archive holds each patient's ground-truth map (``SNAPgt<ID>_cropped_Pre-processed.mat``)
and the spectra of its labelled pixels (``<ID>_dataset.mat``, rows in MATLAB column-major
order), not the whole preprocessed cube. :func:`real_cubes` rebuilds a cube at the map's
real size: labelled pixels hold their real spectra, every other pixel the spectrum of the
nearest labelled one, so a network sees real tissue everywhere.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Beside the checkout, as on the build and CI machines.
NEMESIS_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "nemesis-public"


def real_cubes(folder: Path = NEMESIS_FOLDER) -> dict[str, np.ndarray]:
    """Capture id -> float32 cube ``(H, W, 25)``; empty when ``folder`` is absent."""
    from scipy.io import loadmat
    from scipy.ndimage import distance_transform_edt

    cubes = {}
    for path in sorted(Path(folder).glob("SNAPgt*_cropped_Pre-processed.mat")):
        capture_id = path.name[len("SNAPgt"):].split("_")[0]
        truth = loadmat(path)["groundTruthMap"]
        data = loadmat(Path(folder) / f"{capture_id}_dataset.mat")["data"].astype(np.float32)
        labelled = truth.T != 0  # MATLAB order: column by column
        if labelled.sum() != data.shape[0]:
            continue  # spectra that do not match the map: not a cube to judge on
        cube_t = np.zeros((*truth.T.shape, data.shape[1]), np.float32)
        cube_t[labelled] = data
        cube = np.ascontiguousarray(cube_t.transpose(1, 0, 2))
        _, (rows, cols) = distance_transform_edt(truth == 0, return_indices=True)
        cubes[capture_id] = np.ascontiguousarray(cube[rows, cols])
    return cubes
