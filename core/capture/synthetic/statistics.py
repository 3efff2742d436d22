"""Statistics behind the synthetic captures: class spectra, patients, annotated pixel counts.

From ``resources/spectra``: ``class_spectra.json`` (per class: mean and covariance of
*preprocessed* spectra, per-patient means) and ``thesis_figures.json`` (Table 3.1's
labelled pixel counts). :func:`draw_spectra` draws a scene's spectra from them.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from core.classes import CLASS_IDS
from resources import SPECTRA_DIR

THESIS_CUBE_HW = (217, 409)  # cube size Table 3.1's pixel counts refer to
MIN_SCALED_COUNT = 4  # scaled-down label counts keep every class present
_SMOOTH_FRACTION = 0.5  # share of spectral variance that is spatially smooth

_CLASS_KEYS = {1: "healthy", 2: "tumor", 3: "venous_blood", 4: "arterial_blood", 5: "dura_mater"}


@dataclass(frozen=True)
class ClassStats:
    mean: np.ndarray  # (B,)
    chol: np.ndarray  # (B, B) lower Cholesky factor of the covariance
    per_patient: dict  # source patient -> mean (B,)


@lru_cache(maxsize=1)
def class_stats() -> dict[int, ClassStats]:
    spec = json.loads((SPECTRA_DIR / "class_spectra.json").read_text())["classes"]
    stats = {}
    for class_id, key in _CLASS_KEYS.items():
        entry = spec[key]
        cov = np.asarray(entry["cov"], dtype=np.float64)
        stats[class_id] = ClassStats(
            mean=np.asarray(entry["mean"], dtype=np.float64),
            chol=np.linalg.cholesky(cov + 1e-9 * np.eye(len(cov))),
            per_patient={p: np.asarray(v["mean"], dtype=np.float64) for p, v in entry["per_patient"].items()},
        )
    return stats


@lru_cache(maxsize=1)
def thesis_label_counts() -> dict[str, tuple[int, ...]]:
    """Table 3.1 of the thesis: patient -> labelled pixels (healthy, tumour, venous, arterial, dura)."""
    table = json.loads((SPECTRA_DIR / "thesis_figures.json").read_text())["ground_truth_pixels_table_3_1"]
    return {patient: tuple(int(v) for v in counts) for patient, counts in table.items() if patient != "columns"}


def thesis_patients() -> tuple[str, ...]:
    """The 13 thesis patients, in Table 3.1 order (``ID18`` ... ``ID56``)."""
    return tuple(thesis_label_counts())


def source_patient(patient: str) -> str:
    """Which of the four ``class_spectra.json`` patients supplies this patient's means (deterministic)."""
    sources = sorted(class_stats()[1].per_patient)
    patients = thesis_patients()
    index = patients.index(patient) if patient in patients else zlib.crc32(patient.encode())
    return sources[index % len(sources)]


def patient_class_means(patient: str) -> dict[int, np.ndarray]:
    """Mean spectrum (B,) per class for a patient: source patient's mean plus a small smooth shift,
    RMS-normalised (what the class's preprocessed pixels average to).

    The shift depends on the patient only, so captures of one patient agree.
    """
    stats = class_stats()
    source = source_patient(patient)
    rng = np.random.default_rng(zlib.crc32(f"patient:{patient}".encode()))
    n_bands = len(stats[1].mean)
    t = np.linspace(-1.0, 1.0, n_bands)
    # Tilt and bow only: a constant offset would vanish in the RMS normalisation.
    basis = np.stack([t, t**2 - 1.0 / 3.0])
    common = rng.normal(0.0, [0.015, 0.012]) @ basis  # shared by all classes (illumination, tissue state)
    means = {}
    for class_id in CLASS_IDS:
        mean = stats[class_id].per_patient[source] + common + rng.normal(0.0, [0.008, 0.006]) @ basis
        # Pixels are RMS-normalised, so their average sits at the normalised mean (within ~0.01).
        means[class_id] = mean / np.sqrt(np.mean(mean**2))
    return means


def default_label_counts(patient: str, cube_hw: tuple[int, int]) -> dict[int, int]:
    """Table 3.1 counts for the patient, scaled by cube area to ``cube_hw`` (floor of 4 when scaled down).

    Patients not in the table get the table's median counts.
    """
    table = thesis_label_counts()
    if patient in table:
        counts = np.asarray(table[patient], dtype=np.float64)
    else:
        counts = np.median(np.asarray(list(table.values()), dtype=np.float64), axis=0)
    scale = (cube_hw[0] * cube_hw[1]) / (THESIS_CUBE_HW[0] * THESIS_CUBE_HW[1])
    out = {}
    for class_id, count in zip(CLASS_IDS, counts):
        scaled = int(round(count * scale))
        out[class_id] = max(scaled, MIN_SCALED_COUNT) if count > 0 and scale < 1 else scaled
    return out


def nemesis_capture_id(patient: str, capture: int = 1) -> str:
    """``ID18`` -> ``ID0018C01``; ``ID47C2`` -> ``ID0047C02``; other names -> ``<name>C01``."""
    match = re.fullmatch(r"ID0*(\d+)(?:C0*(\d+))?", patient, re.IGNORECASE)
    if match is None:
        return f"{patient}C{capture:02d}"
    number = int(match[2]) if match[2] is not None else capture
    return f"ID{int(match[1]):04d}C{number:02d}"


def normalise_label_counts(label_counts, patient: str, cube_hw: tuple[int, int]) -> dict[int, int]:
    """``label_counts`` (class id -> count, five counts, or None for Table 3.1 scaled) checked, as a dict."""
    if label_counts is None:
        return default_label_counts(patient, cube_hw)
    if isinstance(label_counts, Mapping):
        unknown = set(label_counts) - set(CLASS_IDS)
        if unknown:
            raise ValueError(f"label_counts: unknown class ids {sorted(unknown)} (known: {list(CLASS_IDS)})")
        counts = {c: int(label_counts.get(c, 0)) for c in CLASS_IDS}
    elif isinstance(label_counts, Sequence) and len(label_counts) == len(CLASS_IDS):
        counts = dict(zip(CLASS_IDS, (int(v) for v in label_counts)))
    else:
        raise ValueError("label_counts must map class ids 1..5 to counts, or list 5 counts")
    if any(v < 0 for v in counts.values()):
        raise ValueError(f"label_counts must be >= 0, got {counts}")
    if sum(counts.values()) > cube_hw[0] * cube_hw[1]:
        raise ValueError(f"label_counts total {sum(counts.values())} exceeds the {cube_hw[0]}x{cube_hw[1]} cube")
    return counts


def draw_spectra(
    rng: np.random.Generator, truth: np.ndarray, means: dict[int, np.ndarray], n_bands: int
) -> np.ndarray:
    """RMS-normalised spectra (H, W, B) float32 drawn per class from N(mean, cov)."""
    stats = class_stats()
    hw = truth.shape
    sigma = max(1.0, 2.0 * min(hw) / THESIS_CUBE_HW[0])
    smooth = ndimage.gaussian_filter(
        rng.standard_normal((*hw, n_bands), dtype=np.float32), (sigma, sigma, 0), mode="wrap"
    )
    smooth /= np.maximum(smooth.reshape(-1, n_bands).std(axis=0), 1e-6)
    z = np.sqrt(_SMOOTH_FRACTION) * smooth
    z += np.sqrt(1.0 - _SMOOTH_FRACTION) * rng.standard_normal((*hw, n_bands), dtype=np.float32)
    spectra = np.empty((*hw, n_bands), dtype=np.float32)
    # Background (drapes, skin): a flattened dura spectrum, less variable.
    backgrounds = {0: (0.5 + 0.5 * means[5], 0.5 * stats[5].chol)}
    for class_id, (mean, chol) in {**backgrounds, **{c: (means[c], stats[c].chol) for c in CLASS_IDS}}.items():
        where = truth == class_id
        if where.any():
            spectra[where] = (mean + z[where].astype(np.float64) @ chol.T).astype(np.float32)
    np.maximum(spectra, 0.05, out=spectra)  # physical spectra are positive
    rms = np.sqrt(np.mean(spectra.astype(np.float64) ** 2, axis=-1, keepdims=True))
    return (spectra / rms).astype(np.float32)
