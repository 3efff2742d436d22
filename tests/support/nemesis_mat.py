"""NEMESIS ``.mat`` files as the archive holds them, written with ``scipy.io.savemat`` from a seed.

A capture is a small RMS-normalised cube with rectangular labelled regions (one class
each) on an unlabelled background:

* ``SNAPgt<ID>_cropped_Pre-processed.mat``: ``groundTruthMap`` uint16 NEMESIS codes (0 =
  not labelled) beside a ``dataResults`` MATLAB struct, as the labelling tool saves it;
* ``<ID>_dataset.mat``: ``data`` N x 25 float64, ``label`` N x 1 uint16 codes,
  ``label4Classes`` N x 1 uint8; rows are the labelled pixels in MATLAB column-major order;
* ``SNAPimages<ID>_cropped_Pre-processed.mat``: ``preProcessedImage`` H x W x 25 float64.

Class spectra differ in shape (separable, as a sanity floor for training tests), with noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

CODES = {1: 101, 2: 200, 3: 300, 4: 302, 5: 320}


@dataclass(frozen=True)
class NemesisCapture:
    capture_id: str
    cube: np.ndarray  # float64 (H, W, 25) RMS-normalised
    classes: np.ndarray  # uint8 (H, W) class ids, 0 unlabelled
    codes: np.ndarray  # uint16 (H, W) NEMESIS codes


def class_means(bands: int = 25) -> np.ndarray:
    """(5, B) mean spectra, RMS 1, different shapes per class."""
    x = np.linspace(0, np.pi, bands)
    means = np.stack([1 + 0.35 * np.sin((c + 1) * x + c) for c in range(5)])
    return means / np.sqrt((means**2).mean(axis=1, keepdims=True))


def make_capture(capture_id: str, seed: int, h: int = 24, w: int = 32, bands: int = 25, noise: float = 0.08
                 ) -> NemesisCapture:
    rng = np.random.default_rng(seed)
    classes = np.zeros((h, w), np.uint8)
    # one rectangle per class, at seeded places; later ones may overlap earlier ones
    for c in range(1, 6):
        r, q = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
        classes[r : r + int(rng.integers(3, 7)), q : q + int(rng.integers(3, 7))] = c
    means = class_means(bands)
    background = rng.integers(0, 5, size=(h, w))
    labelled = np.where(classes > 0, classes - 1, background)
    cube = means[labelled] + noise * rng.standard_normal((h, w, bands))
    cube /= np.sqrt((cube**2).mean(axis=-1, keepdims=True))
    codes = np.zeros((h, w), np.uint16)
    for c, code in CODES.items():
        codes[classes == c] = code
    return NemesisCapture(capture_id, cube, classes, codes)


def column_major_rows(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the labelled pixels in MATLAB column-major order."""
    cols, rows = np.nonzero(codes.T > 0)
    return rows, cols


def write_ground_truth(folder: Path, capture: NemesisCapture) -> Path:
    path = Path(folder) / f"SNAPgt{capture.capture_id}_cropped_Pre-processed.mat"
    data_results = {  # a few of the real struct's fields: savemat writes a dict as a MATLAB struct
        "numberOfReferencePixels": np.array([[int((capture.codes > 0).sum())]], np.float64),
        "comment": "synthetic test capture",
        "GTmap": capture.codes.astype(np.float64),
        "rgbImage": np.zeros((capture.codes.shape[0], capture.codes.shape[1], 3), np.uint8),
    }
    scipy.io.savemat(path, {"groundTruthMap": capture.codes, "dataResults": data_results})
    return path


def write_spectra(folder: Path, capture: NemesisCapture) -> Path:
    rows, cols = column_major_rows(capture.codes)
    path = Path(folder) / f"{capture.capture_id}_dataset.mat"
    scipy.io.savemat(path, {
        "data": capture.cube[rows, cols].astype(np.float64),
        "label": capture.codes[rows, cols].astype(np.uint16)[:, None],
        "label4Classes": capture.classes[rows, cols].astype(np.uint8)[:, None],
    })
    return path


def write_cube(folder: Path, capture: NemesisCapture) -> Path:
    path = Path(folder) / f"SNAPimages{capture.capture_id}_cropped_Pre-processed.mat"
    scipy.io.savemat(path, {"preProcessedImage": capture.cube})
    return path


def write_archive(folder: Path, ids_seeds, *, forms=("gt", "spectra")) -> dict[str, NemesisCapture]:
    """Write every capture ``(capture_id, seed)`` in ``forms`` (subset of gt, spectra, cube) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for capture_id, seed in ids_seeds:
        capture = make_capture(capture_id, seed)
        if "gt" in forms:
            write_ground_truth(folder, capture)
        if "spectra" in forms:
            write_spectra(folder, capture)
        if "cube" in forms:
            write_cube(folder, capture)
        out[capture_id] = capture
    return out
