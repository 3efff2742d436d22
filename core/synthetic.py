"""Synthetic raw captures of a brain-like scene, for demos and tests.

The statistics in ``resources/spectra/class_spectra.json`` describe *preprocessed*
spectra (after the thesis SCM and RMS normalisation), so the generator inverts
the preprocessing chain of ``core.preprocessing``:

1. a scene at cube resolution (H, W): dura rim, cortex (healthy), an
   irregular tumour, venous and arterial vessels, background outside the rim;
2. per pixel a spectrum ``s`` (B,) drawn from its class's multivariate normal
   (patient mean + a small patient shift, the class covariance; half of the
   variation spatially smooth, half per pixel), RMS-normalised;
3. reflectance ``r = inv(SCM) @ (s * brightness)`` with ``brightness`` (H, W)
   in about 0.3-0.7 from curvature shading and the light spot;
4. ``r[b]`` placed at mosaic position ``(b // pw, b % pw)`` of each pattern;
5. 10-bit counts ``raw = dark + r * (white - dark)`` with vignetting, per-band
   filter gains, dark signal non-uniformity, shot and read noise.

Preprocessing the result gives ``spectra`` back up to shot noise and
quantisation. Ground truth comes twice: ``truth`` (dense scene classes) and
``labels`` (sparse blob-shaped strokes inside the truth regions, with per-class
pixel counts following the thesis's Table 3.1 for the patient).

Small profile and camera model: :func:`small_profile` describes a tiny camera
``NeuroHSI-SYNTH-SM5X5`` (not the thesis camera, whose geometry it does not
share). ``resources/cameras/synthetic-small.json`` is the same profile for the
default 40 x 60 size; ``resolve_profile(metadata)`` of a small capture of any
size returns ``small_profile(h, w)`` (thesis SCM included), because the camera
model selects the profile and the metadata gives the geometry.

Everything is seeded: the same arguments give identical arrays. No torch.
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from core.camera_profiles import THESIS_PROFILE_ID, CameraProfile, load_profile, position_wavelengths
from core.classes import CLASS_IDS
from core.metadata import CaptureMetadata
from resources import SPECTRA_DIR

SMALL_PROFILE_ID = "synthetic-small"
SYNTHETIC_CAMERA_MODEL = "NeuroHSI-SYNTH-SM5X5"
MAX_COUNT = 1023  # 10-bit sensor
THESIS_CUBE_HW = (217, 409)  # cube size Table 3.1's pixel counts refer to
MIN_SCALED_COUNT = 4  # scaled-down label counts keep every class present
_ELECTRONS_PER_COUNT = 11.0  # CMV2000-class sensor: ~11k e- full well over 10 bits
_READ_NOISE = 1.2  # counts, rms
_SMOOTH_FRACTION = 0.5  # share of spectral variance that is spatially smooth

_CLASS_KEYS = {1: "healthy", 2: "tumor", 3: "venous_blood", 4: "arterial_blood", 5: "dura_mater"}


@dataclass(frozen=True)
class SyntheticCapture:
    """A generated capture with its ground truth and the noiseless spectra behind it."""

    raw: np.ndarray  # uint16 (rows, cols), 10-bit counts
    dark: np.ndarray  # uint16 (rows, cols)
    white: np.ndarray  # uint16 (rows, cols)
    metadata: CaptureMetadata
    labels: np.ndarray  # uint8 (H, W): sparse annotated strokes, 0 unlabelled
    truth: np.ndarray  # uint8 (H, W): dense scene class, 0 background
    capture_id: str  # e.g. "ID0018C01"
    patient: str  # e.g. "ID18"
    seed: int
    profile: CameraProfile = field(repr=False)
    spectra: np.ndarray = field(repr=False)  # float32 (H, W, B): RMS-normalised s, what preprocessing returns
    brightness: np.ndarray = field(repr=False)  # float32 (H, W): scale applied to s before inv(SCM)
    class_means: dict = field(repr=False)  # class id -> float64 (B,): the patient's mean spectrum
    source_patient: str = ""  # which class_spectra.json patient the means come from

    def to_capture(self):
        """The frames as a :class:`core.capture_io.Capture` (in memory, no paths)."""
        from core.capture_io import Capture

        return Capture(self.raw, self.dark, self.white, self.metadata, capture_id=self.capture_id)


# --------------------------------------------------------------------------- profiles


def small_profile(height: int = 40, width: int = 60) -> CameraProfile:
    """A tiny thesis-like profile: cube (height, width, 25), 5x5 mosaic at offset (0, 0).

    Filter area ``(5*width, 5*height)`` px on a sensor 3 px larger each way (like
    the thesis's 2045x1085 area on 2048x1088), thesis SCM and wavelengths.
    """
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"small_profile: height and width must be >= 1, got {height}x{width}")
    height, width = int(height), int(width)
    thesis = load_profile(THESIS_PROFILE_ID)
    return CameraProfile(
        id=SMALL_PROFILE_ID,
        sensor_shape=(5 * height + 3, 5 * width + 3),
        offset_xy=(0, 0),
        area_wh=(5 * width, 5 * height),
        pattern_wh=(5, 5),
        wavelengths_nm=thesis.wavelengths_nm,
        scm=thesis.scm,
        camera_model=SYNTHETIC_CAMERA_MODEL,
    )


def metadata_for(profile: CameraProfile, *, seed: int = 0) -> CaptureMetadata:
    """Ximea-style metadata describing ``profile`` (so ``resolve_profile`` finds it back)."""
    rng = np.random.default_rng([seed, 7])
    when = datetime(2019, 3, 4, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=int(rng.integers(0, 60 * 24 * 900)))
    return CaptureMetadata(
        camera_model=profile.camera_model,
        serial=f"SYN{zlib.crc32(profile.id.encode()) % 10**7:07d}",
        exposure_us=float(rng.integers(20, 80) * 1000),
        gain_db=0.0,
        acquisition_time=when.strftime("%Y-%m-%dT%H:%M:%S"),
        filter_offset_xy=tuple(profile.offset_xy),
        filter_size_wh=tuple(profile.area_wh),
        pattern_wh=tuple(profile.pattern_wh),
        wavelengths_nm=position_wavelengths(profile),  # per pattern position, as a camera writes them
    )


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class _ClassStats:
    mean: np.ndarray  # (B,)
    chol: np.ndarray  # (B, B) lower Cholesky factor of the covariance
    per_patient: dict  # source patient -> mean (B,)


@lru_cache(maxsize=1)
def _class_stats() -> dict[int, _ClassStats]:
    spec = json.loads((SPECTRA_DIR / "class_spectra.json").read_text())["classes"]
    stats = {}
    for class_id, key in _CLASS_KEYS.items():
        entry = spec[key]
        cov = np.asarray(entry["cov"], dtype=np.float64)
        stats[class_id] = _ClassStats(
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
    sources = sorted(_class_stats()[1].per_patient)
    patients = thesis_patients()
    index = patients.index(patient) if patient in patients else zlib.crc32(patient.encode())
    return sources[index % len(sources)]


def patient_class_means(patient: str) -> dict[int, np.ndarray]:
    """Mean spectrum (B,) per class for a patient: source patient's mean plus a small smooth shift,
    RMS-normalised (what the class's preprocessed pixels average to).

    The shift depends on the patient only, so captures of one patient agree.
    """
    stats = _class_stats()
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


def _normalise_counts(label_counts, patient: str, cube_hw: tuple[int, int]) -> dict[int, int]:
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


# --------------------------------------------------------------------------- scene


def _irregular_radius(rng: np.random.Generator, angle: np.ndarray, *, roughness: float, orders=range(2, 8)):
    """1 + sum_k a_k cos(k angle + phase_k): a wobbly outline around a unit circle."""
    radius = np.ones_like(angle)
    for k in orders:
        radius += rng.normal(0.0, roughness / k) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
    return radius


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Spatially smooth standard-normal-ish field (H, W), unit std."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    return field_ / max(float(field_.std()), 1e-6)


def _draw_vessels(
    rng: np.random.Generator,
    shape: tuple[int, int],
    inside: np.ndarray,
    centre: tuple[float, float],
    extent: float,
    radius_px: tuple[float, float],
    target_area: int,
    max_vessels: int,
    min_vessels: int = 2,
) -> np.ndarray:
    """Curvy lines of varying width inside ``inside``, added until they cover ``target_area`` px."""
    h, w = shape
    radii = np.zeros(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    step = 0.5
    drawn = 0
    for _ in range(max_vessels):
        # Start near the craniotomy edge and head roughly across it, turning smoothly.
        start_angle = rng.uniform(0, 2 * np.pi)
        y = centre[0] + 0.9 * extent * np.sin(start_angle) * h / max(h, w)
        x = centre[1] + 0.9 * extent * np.cos(start_angle) * w / max(h, w)
        heading = start_angle + np.pi + rng.normal(0.0, 0.5)
        n = int(rng.uniform(1.2, 2.0) * extent / step)
        # Gentle meanders: the heading drifts by about a radian over a few tens of pixels.
        turning = ndimage.gaussian_filter1d(rng.normal(0.0, 1.0, n), 40)
        turning *= 0.012 / max(float(turning.std()), 1e-9)
        headings = heading + np.cumsum(turning)
        ys = y + np.cumsum(step * np.sin(headings))
        xs = x + np.cumsum(step * np.cos(headings))
        t = np.linspace(0.0, 1.0, n)
        base = rng.uniform(*radius_px)
        widths = base * (1.0 - 0.45 * t) * (1.0 + 0.25 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
        rows, cols = np.round(ys).astype(int), np.round(xs).astype(int)
        keep = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        if not keep.any():
            continue
        drawn += 1
        np.maximum.at(radii, (rows[keep], cols[keep]), widths[keep].astype(np.float32))
        # Each pixel takes the width of its nearest centre-line point: one distance transform.
        distance, (near_r, near_c) = ndimage.distance_transform_edt(radii == 0, return_indices=True)
        mask = (distance <= np.maximum(radii[near_r, near_c], 0.5)) & inside
        if mask.sum() >= target_area and drawn >= min_vessels:
            break
    return mask


def _scene(rng: np.random.Generator, hw: tuple[int, int], counts: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Dense class map (H, W) uint8 and brightness (H, W) float32 in about [0.3, 0.7]."""
    h, w = hw
    size = max(h, w)
    scale = min(h, w) / THESIS_CUBE_HW[0]  # 1 at thesis resolution
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h / 2 + rng.uniform(-0.05, 0.05) * h, w / 2 + rng.uniform(-0.05, 0.05) * w
    # Elliptical normalised radius: 1 at the image's inscribed ellipse.
    ey, ex = (yy - cy) / (h / 2), (xx - cx) / (w / 2)
    rho = np.hypot(ey, ex) / _irregular_radius(rng, np.arctan2(ey, ex), roughness=0.12)
    rho = rho + 0.03 * _smooth_noise(rng, hw, max(1.0, 2 * scale))

    truth = np.zeros(hw, dtype=np.uint8)
    outer = rho < 1.25  # beyond: drapes and skin (background, class 0) in the corners
    # Craniotomy edge chosen so the dura rim holds ~2.5x the dura strokes (and at least 12 % of the frame).
    need = max(int(2.5 * counts[5]), int(0.12 * h * w))
    rim_rho = np.sort(rho[outer])
    edge = rim_rho[max(0, len(rim_rho) - need - 1)] if need < len(rim_rho) else rim_rho[0]
    edge = float(np.clip(edge, 0.45, 0.92))
    brain = rho < edge
    truth[outer] = 5
    truth[brain] = 1

    # Tumour: an irregular blob inside the brain, sized from the tumour strokes it must hold.
    brain_area = int(brain.sum())
    area = float(np.clip(3.0 * counts[2], 0.03 * brain_area, 0.45 * brain_area))
    radius = np.sqrt(area / np.pi)
    room = max(0.0, edge * min(h, w) / 2 - radius)
    angle = rng.uniform(0, 2 * np.pi)
    ty, tx = cy + rng.uniform(0, 0.6) * room * np.sin(angle), cx + rng.uniform(0, 0.6) * room * np.cos(angle)
    dist = np.hypot(yy - ty, xx - tx)
    outline = radius * _irregular_radius(rng, np.arctan2(yy - ty, xx - tx), roughness=0.35)
    tumour = (dist / np.maximum(outline, 1e-3) + 0.12 * _smooth_noise(rng, hw, max(1.0, 1.5 * scale)) < 1.0) & brain
    truth[tumour] = 2

    # Vessels run over cortex and tumour; arteries are thinner and drawn last (on top).
    extent = edge * size / 2
    venous = _draw_vessels(
        rng, hw, brain, (cy, cx), extent, (1.2 * scale + 0.3, 3.2 * scale + 0.5), max(int(2.5 * counts[3]), 1), 12
    )
    truth[venous] = 3
    arterial = _draw_vessels(
        rng, hw, brain, (cy, cx), extent, (0.7 * scale + 0.3, 1.8 * scale + 0.4), max(int(2.5 * counts[4]), 1), 10
    )
    truth[arterial] = 4

    # Brightness: a lit dome (curvature shading) times the light spot; vessels and background darker.
    dome = np.sqrt(np.clip(1.0 - (rho / 1.3) ** 2, 0.0, 1.0))
    spot = np.exp(-(((yy - cy - 0.1 * h) / (0.9 * h)) ** 2 + ((xx - cx + 0.1 * w) / (0.9 * w)) ** 2))
    brightness = 0.3 + 0.4 * (0.55 * dome + 0.45 * spot) * (1.0 + 0.05 * _smooth_noise(rng, hw, max(1.0, 3 * scale)))
    brightness = np.where(np.isin(truth, (3, 4)), brightness * 0.85, brightness)
    brightness = np.where(truth == 0, brightness * 0.8, brightness)
    return truth, np.clip(brightness, 0.25, 0.72).astype(np.float32)


def _annotate(rng: np.random.Generator, truth: np.ndarray, counts: dict[int, int]) -> np.ndarray:
    """Sparse blob-shaped strokes inside each class region, ``counts[c]`` pixels per class (fewer if too small)."""
    h, w = truth.shape
    labels = np.zeros(truth.shape, dtype=np.uint8)
    for class_id in CLASS_IDS:
        target = counts[class_id]
        if target <= 0:
            continue
        region = truth == class_id
        # Annotators keep off borders: use the eroded region when it still has room.
        eroded = ndimage.binary_erosion(region)
        if eroded.sum() >= 1.5 * target:
            region = eroded
        available = region & (labels == 0)
        done = 0
        n_blobs = int(rng.integers(1, 3)) if target < 40 else int(rng.integers(2, 7))
        blob_area = max(target / n_blobs, 1.0)
        for _ in range(400):
            if done >= target or not available.any():
                break
            rows, cols = np.nonzero(available)
            pick = int(rng.integers(len(rows)))
            r0, c0 = rows[pick], cols[pick]
            want = min(int(np.ceil(blob_area * rng.uniform(0.7, 1.3))), target - done)
            radius = np.sqrt(want / np.pi) + 1.0
            # Look far enough that a thin vessel still yields a stroke of `want` pixels along it.
            reach = int(np.ceil(3.0 * radius)) + 2
            r_lo, r_hi, c_lo, c_hi = max(0, r0 - reach), min(h, r0 + reach + 1), max(0, c0 - reach), min(w, c0 + reach + 1)
            yy, xx = np.mgrid[r_lo:r_hi, c_lo:c_hi]
            wobble = _irregular_radius(rng, np.arctan2(yy - r0, xx - c0), roughness=0.3, orders=range(2, 5))
            closeness = np.hypot(yy - r0, xx - c0) / np.maximum(wobble, 0.3)
            blob_rows, blob_cols = np.nonzero(available[r_lo:r_hi, c_lo:c_hi])
            if len(blob_rows) == 0:
                continue
            # The `want` nearest free pixels (in the wobbly metric): a blob, or a segment of a vessel.
            order = np.argsort(closeness[blob_rows, blob_cols], kind="stable")[:want]
            labels[blob_rows[order] + r_lo, blob_cols[order] + c_lo] = class_id
            available[blob_rows[order] + r_lo, blob_cols[order] + c_lo] = False
            done += len(order)
    return labels


# --------------------------------------------------------------------------- spectra and frames


def _draw_spectra(
    rng: np.random.Generator, truth: np.ndarray, means: dict[int, np.ndarray], n_bands: int
) -> np.ndarray:
    """RMS-normalised spectra (H, W, B) float32 drawn per class from N(mean, cov)."""
    stats = _class_stats()
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


def _mosaic(reflectance: np.ndarray, pattern_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, B) -> (ph*H, pw*W) with band b at pattern row b // pw, column b % pw (inverse of form_cube)."""
    h, w, _ = reflectance.shape
    pw, ph = pattern_wh
    return reflectance.reshape(h, w, ph, pw).transpose(0, 2, 1, 3).reshape(ph * h, pw * w)


def _frames(
    rng: np.random.Generator, reflectance_area: np.ndarray, profile: CameraProfile, *, noise: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint16 10-bit raw, dark and white full-sensor frames around the mosaic reflectance."""
    min_rows, min_cols = profile.min_frame_shape
    rows, cols = max(profile.sensor_shape[0], min_rows), max(profile.sensor_shape[1], min_cols)
    ox, oy = profile.offset_xy
    area_h, area_w = reflectance_area.shape
    pw, ph = profile.pattern_wh

    # Dark: offset plus fixed per-pixel non-uniformity (the same in all three frames).
    dark_true = np.full((rows, cols), rng.uniform(40, 70), dtype=np.float32)
    if noise:
        dark_true += rng.normal(0.0, 1.5, size=(rows, cols)).astype(np.float32)

    # White signal over the filter area: level x vignetting x per-band filter gain.
    y = (np.arange(area_h, dtype=np.float32) - area_h / 2) / (max(area_h, area_w) / 2)
    x = (np.arange(area_w, dtype=np.float32) - area_w / 2) / (max(area_h, area_w) / 2)
    vignetting = 1.0 - 0.22 * (y[:, None] ** 2 + x[None, :] ** 2) / 1.3
    band_gain = np.tile(rng.uniform(0.9, 1.0, size=(ph, pw)).astype(np.float32), (area_h // ph, area_w // pw))
    white_signal = rng.uniform(930, 990) * vignetting * band_gain - dark_true[oy : oy + area_h, ox : ox + area_w]
    raw_signal = reflectance_area * white_signal

    def expose(signal: np.ndarray) -> np.ndarray:
        frame = dark_true.copy()
        frame[oy : oy + area_h, ox : ox + area_w] += signal
        if noise:
            # Shot noise (Gaussian approximation of Poisson in electrons) plus read noise.
            sd = np.sqrt(np.maximum(frame - dark_true, 0.0) / _ELECTRONS_PER_COUNT + _READ_NOISE**2)
            frame += sd * rng.standard_normal(frame.shape, dtype=np.float32)
        return np.clip(np.rint(frame), 0, MAX_COUNT).astype(np.uint16)

    dark = expose(np.zeros_like(white_signal))
    white = expose(white_signal)
    raw = expose(raw_signal)
    return raw, dark, white


def generate_capture(
    *,
    seed: int,
    patient: str = "ID18",
    label_counts: Mapping[int, int] | Sequence[int] | None = None,
    profile: CameraProfile | None = None,
    noise: bool = True,
) -> SyntheticCapture:
    """Generate one synthetic capture (see the module docstring for the model).

    ``seed`` fixes everything per capture; the patient's spectral means depend on
    ``patient`` only. ``label_counts`` (class id -> annotated pixels, or five
    counts) defaults to Table 3.1 for ``patient`` scaled to the cube area.
    ``profile`` defaults to the thesis profile (1088 x 2048 frames, cube
    217 x 409 x 25). ``noise=False`` drops shot, read and fixed-pattern noise
    (frames are still rounded to integer counts).
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(patient, str) or not patient:
        raise ValueError(f"patient must be a non-empty string, got {patient!r}")
    profile = load_profile(THESIS_PROFILE_ID) if profile is None else profile
    h, w, n_bands = profile.cube_shape
    if n_bands != len(_class_stats()[1].mean):
        raise ValueError(f"profile {profile.id!r} has {n_bands} bands; the class spectra have 25")
    counts = _normalise_counts(label_counts, patient, (h, w))

    scene_rng, label_rng, spectra_rng, frame_rng = (np.random.default_rng([int(seed), k]) for k in range(4))
    truth, brightness = _scene(scene_rng, (h, w), counts)
    labels = _annotate(label_rng, truth, counts)
    means = patient_class_means(patient)
    spectra = _draw_spectra(spectra_rng, truth, means, n_bands)

    inverse_scm = np.linalg.inv(np.asarray(profile.scm, dtype=np.float64)).astype(np.float32)
    reflectance = (spectra * brightness[..., None]).reshape(-1, n_bands) @ inverse_scm.T
    area = _mosaic(reflectance.reshape(h, w, n_bands), profile.pattern_wh)
    raw, dark, white = _frames(frame_rng, area, profile, noise=noise)

    return SyntheticCapture(
        raw=raw,
        dark=dark,
        white=white,
        metadata=metadata_for(profile, seed=int(seed)),
        labels=labels,
        truth=truth,
        capture_id=nemesis_capture_id(patient),
        patient=patient,
        seed=int(seed),
        profile=profile,
        spectra=spectra,
        brightness=brightness,
        class_means=means,
        source_patient=source_patient(patient),
    )
