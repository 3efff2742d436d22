"""Synthetic sensor frames: reflectance placed on the mosaic, exposed as 10-bit raw, dark and white counts."""
from __future__ import annotations

import numpy as np

from core.capture.camera_profiles import CameraProfile

MAX_COUNT = 1023  # 10-bit sensor
_ELECTRONS_PER_COUNT = 11.0  # CMV2000-class sensor: ~11k e- full well over 10 bits
_READ_NOISE = 1.2  # counts, rms


def mosaic(reflectance: np.ndarray, pattern_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, B) -> (ph*H, pw*W) with band b at pattern row b // pw, column b % pw (inverse of form_cube)."""
    h, w, _ = reflectance.shape
    pw, ph = pattern_wh
    return reflectance.reshape(h, w, ph, pw).transpose(0, 2, 1, 3).reshape(ph * h, pw * w)


def sensor_frames(
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
