"""Synthetic raw captures of a brain-like scene, for demos and tests.

The statistics in ``resources/spectra/class_spectra.json`` describe *preprocessed*
spectra (after the thesis SCM and RMS normalisation), so the generator inverts
the preprocessing chain of ``core.spectral.chain``:

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
Steps 1 and the labels: :mod:`core.capture.synthetic.scene`; step 2 and the statistics:
:mod:`core.capture.synthetic.statistics`; steps 4-5: :mod:`core.capture.synthetic.frames`.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from core.capture.camera_profiles import THESIS_PROFILE_ID, CameraProfile, load_profile, position_wavelengths
from core.capture.metadata import CaptureMetadata
from core.capture.synthetic.frames import MAX_COUNT, mosaic, sensor_frames
from core.capture.synthetic.scene import annotate, draw_scene
from core.capture.synthetic.statistics import (
    MIN_SCALED_COUNT,
    THESIS_CUBE_HW,
    class_stats,
    default_label_counts,
    draw_spectra,
    nemesis_capture_id,
    normalise_label_counts,
    patient_class_means,
    source_patient,
    thesis_label_counts,
    thesis_patients,
)

SMALL_PROFILE_ID = "synthetic-small"
SYNTHETIC_CAMERA_MODEL = "NeuroHSI-SYNTH-SM5X5"

__all__ = [  # the public names, wherever they are defined
    "MAX_COUNT", "MIN_SCALED_COUNT", "SMALL_PROFILE_ID", "SYNTHETIC_CAMERA_MODEL", "THESIS_CUBE_HW",
    "SyntheticCapture", "default_label_counts", "generate_capture", "metadata_for", "nemesis_capture_id",
    "patient_class_means", "small_profile", "source_patient", "thesis_label_counts", "thesis_patients",
]


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
        """The frames as a :class:`core.capture.files.Capture` (in memory, no paths)."""
        from core.capture.files import Capture

        return Capture(self.raw, self.dark, self.white, self.metadata, capture_id=self.capture_id)

    def write_nemesis_files(self, folder: str | Path, capture_id: str | None = None) -> Path:
        """Write the frames as a NEMESIS triplet in ``folder``: ``IDxxxxCyy.tif`` (raw), ``IDxxxxCDyy.tif``
        (dark), ``IDxxxxCWyy.tif`` (white), with the metadata, as the camera software names them
        (:func:`core.capture.files.find_references` finds the references back). Returns the raw path.

        ``capture_id`` (default: this capture's) must look like ``ID0018C01``.
        """
        from core.capture.files import write_frame

        capture_id = self.capture_id if capture_id is None else capture_id
        match = re.fullmatch(r"(ID\d+)C(\d+)", capture_id)
        if match is None:
            raise ValueError(f"capture id {capture_id!r} is not a NEMESIS id (IDxxxxCyy)")
        folder = Path(folder)
        base, number = match.groups()
        raw_path = write_frame(folder / f"{capture_id}.tif", self.raw, self.metadata)
        write_frame(folder / f"{base}CD{number}.tif", self.dark, self.metadata)
        write_frame(folder / f"{base}CW{number}.tif", self.white, self.metadata)
        return raw_path


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
    if n_bands != len(class_stats()[1].mean):
        raise ValueError(f"profile {profile.id!r} has {n_bands} bands; the class spectra have 25")
    counts = normalise_label_counts(label_counts, patient, (h, w))

    scene_rng, label_rng, spectra_rng, frame_rng = (np.random.default_rng([int(seed), k]) for k in range(4))
    truth, brightness = draw_scene(scene_rng, (h, w), counts)
    labels = annotate(label_rng, truth, counts)
    means = patient_class_means(patient)
    spectra = draw_spectra(spectra_rng, truth, means, n_bands)

    inverse_scm = np.linalg.inv(np.asarray(profile.scm, dtype=np.float64)).astype(np.float32)
    reflectance = (spectra * brightness[..., None]).reshape(-1, n_bands) @ inverse_scm.T
    area = mosaic(reflectance.reshape(h, w, n_bands), profile.pattern_wh)
    raw, dark, white = sensor_frames(frame_rng, area, profile, noise=noise)

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
