"""Whether a model can run on what is open: bands, camera profile, wavelengths, patch size, inputs.

Every classification path calls :func:`check_compatible` before the network runs, and
the comparison and the CLI call :func:`check_runs_on` for labelled spectra; each refuses
in one line (:class:`core.errors.ModelFileError` naming the model file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import ModelFileError
from core.model.files import ModelInfo

# Band centres of a model and a capture may differ by calibration rounding, not by a band.
WAVELENGTH_TOLERANCE_NM = 5.0


def check_compatible(info: ModelInfo, cube, *, path: str | Path | None = None) -> None:
    """Refuse (``ModelFileError``) a model whose band count, camera profile or patch size does not fit ``cube``.

    ``cube`` is a :class:`core.spectral.chain.Cube`; ``path`` (the model file) names the error.
    """
    h, w, bands = cube.data.shape
    who = f"model {info.name!r} v{info.version}"
    if bands != info.n_bands:
        raise ModelFileError(
            path, f"{who} was trained on {info.n_bands} bands, but the capture has {bands} (profile {cube.profile_id!r})"
        )
    if cube.profile_id != info.profile_id:
        raise ModelFileError(
            path, f"{who} was trained for camera profile {info.profile_id!r}, but the capture uses {cube.profile_id!r}"
        )
    model_wl, cube_wl = info.wavelengths_nm, getattr(cube, "wavelengths_nm", None)
    if model_wl is not None and cube_wl is not None:
        model_wl, cube_wl = np.asarray(model_wl, dtype=np.float64), np.asarray(cube_wl, dtype=np.float64)
        difference = np.abs(model_wl - cube_wl) if model_wl.shape == cube_wl.shape else None
        # NaN compares false with everything: a NaN wavelength must fail here, not pass.
        if difference is None or not np.isfinite(difference).all() or difference.max() > WAVELENGTH_TOLERANCE_NM:
            worst = ""
            if difference is not None and not np.isfinite(difference).all():
                worst = f"; band {int(np.flatnonzero(~np.isfinite(difference))[0])} has no valid wavelength (NaN)"
            elif difference is not None:
                worst = f"; band {int(difference.argmax())} differs by {difference.max():.1f} nm"
            raise ModelFileError(
                path,
                f"{who} was trained on bands at {_nm_list(model_wl)} nm, but the capture's bands are at "
                f"{_nm_list(cube_wl)} nm{worst} (tolerance {WAVELENGTH_TOLERANCE_NM:g} nm)",
            )
    half = info.patch_size // 2
    if info.inputs == "patches" and (info.patch_size % 2 == 0 or min(h, w) <= half):
        raise ModelFileError(
            path, f"{who} uses {info.patch_size}x{info.patch_size} patches, which do not fit a {h}x{w} cube"
        )


def check_runs_on(info: ModelInfo, *, has_image: bool, what: str, path: str | Path | None = None) -> None:
    """Refuse (``ModelFileError``, one line) a patch model on data without an image (labelled spectra only)."""
    if info.inputs == "patches" and not has_image:
        raise ModelFileError(
            path, f"model {info.name!r} v{info.version} ({info.model_kind}) needs {info.patch_size}x{info.patch_size} "
            f"patches of an image, but {what} holds labelled spectra only; use a spectral model (--model-kind spectral)"
        )


def _nm_list(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"
