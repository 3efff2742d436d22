"""Is there tissue in front of the camera? Featureless frames and spectra unlike any tissue.

A frame filled with one value, or a grey card (``dark + 0.5 * (white - dark)``), passes every
exposure check and, left alone, the network paints it 100 % one class. Two facts of real
tissue are checked on the preprocessed cube (``float32 (H, W, B)``, RMS-normalised):

- **Tissue-like spectrum**: haemoglobin, water and lipids shape every tissue spectrum in
  the NIR, so after RMS normalisation its spread across bands is far from 0. A grey,
  white or black surface reflects all bands alike: a flat normalised spectrum (all
  ones). Pixels whose band spread is below :data:`FLAT_SPECTRUM_STD` are not tissue.
  Measured: real NEMESIS spectra (10,371 labelled pixels of 3 patients) have a band
  spread of at least 0.030; the synthetic demo captures at least 0.042; a grey card 0.0008.
- **Texture**: tissue differs from pixel to pixel (classes, vessels, noise). The median
  over bands of the spread across pixels is at least 0.030 within every class of every
  real capture; a grey card gives 0.0013. Below :data:`TEXTURE_STD` the frame has no texture.

Pixels of a featureless frame, or not tissue-like, are *not measured*: never classified.
"""
from __future__ import annotations

import numpy as np

from core.capture.quality import QualityCheck

FLAT_SPECTRUM_STD = 0.01  # per-pixel spread of the normalised spectrum across bands (RMS = 1)
TEXTURE_STD = 0.008  # median over bands of the spread across valid pixels
# (warning, unusable) shares of valid pixels whose spectrum is not tissue-like
NOT_TISSUE_THRESHOLDS = (0.05, 0.50)
_SAMPLE = 4096  # pixels used for the texture measure: a strided sample; its median of spreads is stable


def not_tissue_pixels(data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``bool (H, W)``: valid pixels of the normalised cube ``data (H, W, B)`` whose spectrum is flat."""
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"cube must be (H, W, B), got shape {data.shape}")
    # RMS normalisation makes mean(s**2) = 1, so the band spread is sqrt(1 - mean(s)**2):
    # one mean over bands (a few ms for a full cube) instead of a standard deviation.
    mean = data.mean(axis=-1, dtype=np.float32)
    flat = mean * mean > 1.0 - FLAT_SPECTRUM_STD**2
    return flat if valid is None else flat & np.asarray(valid, dtype=bool)


def texture(data: np.ndarray, valid: np.ndarray) -> float | None:
    """Median over bands of the spread across valid pixels (dimensionless); None with < 2 valid pixels."""
    data = np.asarray(data)
    index = np.flatnonzero(np.asarray(valid, dtype=bool))
    if len(index) < 2:
        return None
    if len(index) > _SAMPLE:  # an evenly strided sample: deterministic and a few ms
        index = index[:: len(index) // _SAMPLE]
    pixels = data.reshape(-1, data.shape[-1])[index]
    return float(np.median(pixels.std(axis=0)))


def tissue_check(cube, *, raw_flat: bool = False) -> tuple[QualityCheck, np.ndarray]:
    """The "featureless" quality check of a :class:`core.spectral.chain.Cube` and the pixels it flags.

    ``raw_flat``: the raw frame holds one value (``core.capture.quality``'s ``flat_frame``).
    Returns ``(check, flagged bool (H, W))``: every valid pixel when the frame is featureless
    (one value, no texture, or mostly flat spectra), else the pixels with flat spectra.
    """
    valid = np.asarray(cube.valid, dtype=bool)
    flat = not_tissue_pixels(cube.data, valid)
    n_valid = int(np.count_nonzero(valid))
    share = float(np.count_nonzero(flat)) / n_valid if n_valid else 0.0
    spread = texture(cube.data, valid)
    warning, unusable = NOT_TISSUE_THRESHOLDS
    if raw_flat:
        return QualityCheck("featureless", "unusable", "no tissue: every pixel flagged not measured", 1.0), valid.copy()
    if spread is not None and spread < TEXTURE_STD:
        message = f"no tissue texture (spread {spread:.4f} across pixels): a flat surface, not tissue"
        return QualityCheck("featureless", "unusable", message, 1.0), valid.copy()
    severity = "unusable" if share >= unusable else "warning" if share >= warning else "ok"
    message = f"{100 * share:.1f} % of pixels have flat spectra unlike any tissue (grey, white or black surface)"
    if severity == "unusable":
        return QualityCheck("featureless", severity, message, round(share, 6)), valid.copy()
    return QualityCheck("featureless", severity, message, round(share, 6)), flat
