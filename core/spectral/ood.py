"""Out-of-distribution pixels: is a spectrum like anything the model was trained on?

A model file carries a compact description of its training spectra (RMS-normalised,
as ``core.spectral.chain`` makes them): the per-class means and ONE pooled
within-class covariance, stored as a whitening matrix ``W`` (``B x B``) so that
``y = (x - mean) @ W`` has identity within-class covariance. A pixel's distance is
its smallest squared Mahalanobis distance to a class mean,
``min_c ||y - centre_c||^2``; it is out of distribution when that exceeds the
``percentile`` (default 99.5) of the same distance over the training pixels.

The covariance is shrunk towards its mean eigenvalue (``shrinkage`` x mean
eigenvalue added to every eigenvalue) because RMS normalisation leaves one
direction with almost no variance, and an unshrunk inverse would call every tiny
wobble in it out of distribution. Cost: one ``(N, B) x (B, B)`` product and one
``(N, B) x (B, C)`` product, about 2 ms for a full-sensor cube (88,753 pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT = "pooled-mahalanobis-v1"
# Sent by the scoring service too: worded without "training" (its answers never name the training data).
UNAVAILABLE = "out-of-distribution check unavailable (the model file does not describe the spectra it learnt from)"
DEFAULT_PERCENTILE = 99.5
DEFAULT_SHRINKAGE = 0.05
_MAX_FIT_PIXELS = 200_000


@dataclass(frozen=True)
class OodDescription:
    """Compact description of a model's training spectra (see the module docstring)."""

    mean: np.ndarray  # float64 (B,)
    whitening: np.ndarray  # float64 (B, B)
    centres: np.ndarray  # float64 (C, B), class means in whitened coordinates
    threshold: float  # squared distance above which a pixel is out of distribution
    percentile: float
    n_pixels: int  # training pixels the description was fitted on

    def to_dict(self) -> dict:
        """JSON-ready (stored in the model file's metadata under ``"ood"``)."""
        return {
            "format": FORMAT,
            "mean": [float(v) for v in self.mean],
            "whitening": [[float(v) for v in row] for row in self.whitening],
            "centres": [[float(v) for v in row] for row in self.centres],
            "threshold": float(self.threshold),
            "percentile": float(self.percentile),
            "n_pixels": int(self.n_pixels),
        }

    @classmethod
    def from_dict(cls, d, *, n_bands: int | None = None, n_classes: int | None = None) -> "OodDescription":
        """Parse and check a stored description; ``ValueError`` names what is wrong."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"unknown format {d.get('format') if isinstance(d, dict) else type(d).__name__!r}")
        try:
            mean = np.asarray(d["mean"], dtype=np.float64)
            whitening = np.asarray(d["whitening"], dtype=np.float64)
            centres = np.asarray(d["centres"], dtype=np.float64)
            threshold, percentile, n = float(d["threshold"]), float(d["percentile"]), int(d["n_pixels"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"missing or malformed field ({exc})") from None
        b = mean.shape[0] if mean.ndim == 1 else -1
        if b < 1 or whitening.shape != (b, b) or centres.ndim != 2 or centres.shape[1] != b or len(centres) < 1:
            raise ValueError(f"inconsistent shapes: mean {mean.shape}, whitening {whitening.shape}, centres {centres.shape}")
        if n_bands is not None and b != n_bands:
            raise ValueError(f"describes {b} bands, the model has {n_bands}")
        if n_classes is not None and len(centres) > n_classes:
            raise ValueError(f"describes {len(centres)} classes, the model has {n_classes}")
        arrays_finite = all(np.isfinite(a).all() for a in (mean, whitening, centres))
        if not arrays_finite or not np.isfinite(threshold) or threshold <= 0:
            raise ValueError("holds NaN, infinite or non-positive values")
        if threshold > MAX_THRESHOLD:
            raise ValueError(
                f"threshold {threshold:.3g} is beyond {MAX_THRESHOLD:g} (squared whitened distance): the check would never fire"
            )
        if not 50.0 <= percentile < 100.0:
            raise ValueError(f"percentile must be in [50, 100), got {percentile:g}")
        return cls(mean, whitening, centres, threshold, percentile, n)


# Squared distances in the whitened space are ~chi-square with B degrees of freedom (B = 25:
# the 99th percentile is ~45); a threshold past this means a distance of 1000 standard
# deviations, i.e. no pixel is ever flagged: a crafted or broken description.
MAX_THRESHOLD = 1e6


def fit_ood(
    spectra: np.ndarray,
    labels: np.ndarray,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    shrinkage: float = DEFAULT_SHRINKAGE,
    max_pixels: int = _MAX_FIT_PIXELS,
    seed: int = 0,
) -> OodDescription:
    """Fit on training spectra ``(N, B)`` (RMS-normalised) and their class ids ``(N,)``; every class needs 2+ pixels."""
    x = np.asarray(spectra, dtype=np.float64)
    y = np.asarray(labels).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"spectra must be (N, B) with N labels, N >= 2; got {x.shape} and {y.shape}")
    if not 50.0 <= percentile < 100.0:
        raise ValueError(f"percentile must be in [50, 100), got {percentile}")
    if x.shape[0] > max_pixels:  # the covariance of 200k pixels is as good as of 2M, 10x cheaper
        keep = np.random.default_rng(seed).choice(x.shape[0], max_pixels, replace=False)
        x, y = x[keep], y[keep]
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    residual = x - means[np.searchsorted(classes, y)]
    covariance = residual.T @ residual / max(1, x.shape[0] - len(classes))
    eigenvalues, vectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues, 0.0, None) + shrinkage * max(float(eigenvalues.mean()), 1e-12)
    whitening = vectors / np.sqrt(eigenvalues)  # (B, B): columns scaled, y = (x - mean) @ W
    mean = x.mean(axis=0)
    centres = (means - mean) @ whitening
    distances = _min_sq_distance((x - mean) @ whitening, centres)
    threshold = float(np.percentile(distances, percentile))
    return OodDescription(mean, whitening, centres, threshold, float(percentile), int(x.shape[0]))


def _min_sq_distance(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    # ||z - c||^2 = ||z||^2 - 2 z.c + ||c||^2, as one matrix product instead of C passes.
    d = (z * z).sum(axis=1)[:, None] - 2.0 * (z @ centres.T) + (centres * centres).sum(axis=1)[None, :]
    return d.min(axis=1)


def ood_distance(desc: OodDescription, data: np.ndarray) -> np.ndarray:
    """Smallest squared Mahalanobis distance to a training class, float32 ``(H, W)`` for ``(H, W, B)`` data."""
    data = np.asarray(data)
    if data.ndim != 3 or data.shape[-1] != desc.mean.shape[0]:
        raise ValueError(f"cube must be (H, W, {desc.mean.shape[0]}), got shape {data.shape}")
    b = data.shape[-1]
    # With u = x W and a_c = mean W + centre_c:  ||u - a_c||^2 = ||u||^2 - 2 u.a_c + ||a_c||^2.
    # One (H, W, B) x (B, B + C) product gives u and -2 u.a_c together; per row it stays below
    # BLAS's threading threshold (see core.spectral.chain.spectral_correction: on busy cores
    # one big threaded product was slower). No (H, W, B) temporaries beyond the product.
    anchors = desc.mean @ desc.whitening + desc.centres  # (C, B)
    projection = np.concatenate([desc.whitening, -2.0 * desc.whitening @ anchors.T], axis=1).astype(np.float32)
    norms = (anchors * anchors).sum(axis=1)
    out = np.matmul(data.astype(np.float32, copy=False), projection)
    u, cross = out[..., :b], out[..., b:]
    best = cross[..., 0] + np.float32(norms[0])
    for c in range(1, len(norms)):
        np.minimum(best, cross[..., c] + np.float32(norms[c]), out=best)
    best += np.einsum("hwb,hwb->hw", u, u)
    return best


def ood_mask(desc: OodDescription, cube) -> np.ndarray:
    """``bool (H, W)``: True where a valid pixel of ``cube`` (a Cube or ``(H, W, B)`` array) is out of distribution."""
    data = getattr(cube, "data", cube)
    mask = ood_distance(desc, data) > desc.threshold
    valid = getattr(cube, "valid", None)
    if valid is not None:
        mask &= valid  # invalid pixels have no spectrum: they are "invalid", not "unlike training"
    return mask


def fit_ood_from_cubes(items, **kwargs) -> OodDescription:
    """Fit on labelled pixels of ``(data (H, W, B), labels (H, W), valid (H, W))`` triples (label 0 = unlabelled)."""
    spectra, ids = [], []
    for data, labels, valid in items:
        keep = (np.asarray(labels) > 0) & np.asarray(valid, dtype=bool)
        spectra.append(np.asarray(data)[keep])
        ids.append(np.asarray(labels)[keep])
    if not spectra:
        raise ValueError("no labelled pixels to describe")
    return fit_ood(np.concatenate(spectra), np.concatenate(ids), **kwargs)




@dataclass(frozen=True)
class OodResult:
    """Out-of-distribution outcome of one classification."""

    mask: np.ndarray | None  # bool (H, W), True = unlike the training spectra; None when unavailable
    fraction: float | None  # of valid pixels; None when unavailable
    available: bool

    @property
    def message(self) -> str:
        if not self.available:
            return UNAVAILABLE
        return f"{100 * self.fraction:.1f} % of pixels are unlike the spectra the model learnt from (out of distribution)"


_DESCRIPTIONS: dict[str, OodDescription] = {}


def ood_for_model(info, cube, *, not_measured: np.ndarray | None = None) -> OodResult:
    """:func:`ood_mask` of ``cube`` with the description in a :class:`core.model.files.ModelInfo` (parsed once per file).

    ``not_measured`` (bool (H, W)): pixels that were not classified (clipped, saturated); they
    are neither flagged nor counted, so the fraction is of the pixels the map classifies.
    """
    if info.ood is None:
        return OodResult(None, None, False)
    desc = _DESCRIPTIONS.get(info.sha256)
    if desc is None:
        desc = _DESCRIPTIONS[info.sha256] = OodDescription.from_dict(info.ood, n_bands=info.n_bands)
    mask = ood_mask(desc, cube)
    valid = getattr(cube, "valid", None)
    counted = np.ones(mask.shape, bool) if valid is None else valid.astype(bool, copy=True)
    if not_measured is not None and not_measured.any():
        mask = mask & ~not_measured
        counted &= ~not_measured
    return OodResult(mask, float(mask.sum()) / max(int(counted.sum()), 1), True)
