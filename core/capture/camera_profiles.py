"""Camera profiles: mosaic geometry, band wavelengths and spectral correction.

A profile tells ``core.spectral.chain.form_cube`` where the filter area sits on
the sensor and how the pattern positions map to bands, and gives the spectral
correction matrix (SCM, ``B x B``, applied per pixel as ``SCM @ spectrum``).
Built-in profiles live in ``resources/cameras/*.json``; a profile can also be
derived from a TIFF's own Ximea metadata (SCM = identity unless given).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from core.errors import ProfileError
from core.capture.metadata import CaptureMetadata
from resources import CAMERAS_DIR

THESIS_PROFILE_ID = "thesis-sm5x5-nir"


@dataclass(frozen=True)
class CameraProfile:
    """Geometry and spectral calibration of a mosaic snapshot camera."""

    id: str
    sensor_shape: tuple[int, int]  # (rows, cols) of the full sensor, px
    offset_xy: tuple[int, int]  # filter-area offset (x, y), px
    area_wh: tuple[int, int]  # filter-area (width, height), px
    pattern_wh: tuple[int, int]  # mosaic (width, height), e.g. (5, 5)
    wavelengths_nm: tuple[float, ...] | None  # per band, nm
    scm: np.ndarray = field(repr=False, compare=False)  # (B, B) float32
    camera_model: str | None = None
    # True when wavelengths_nm is the profile's nominal list, False when derived from the frame's metadata.
    wavelengths_nominal: bool = field(default=True, compare=False)
    # Where the filter geometry came from, for messages: "profile NAME" or "metadata (MODEL)".
    geometry_source: str = field(default="", compare=False)
    # Serial of the camera whose SCM this is, when known; another serial gets a model-level calibration.
    calibrated_serial: str | None = field(default=None, compare=False)

    @property
    def geometry_label(self) -> str:
        return self.geometry_source or f"profile {self.id}"

    @property
    def n_bands(self) -> int:
        return self.pattern_wh[0] * self.pattern_wh[1]

    @property
    def cube_shape(self) -> tuple[int, int, int]:
        """(H, W, B) of the cube this profile forms."""
        pw, ph = self.pattern_wh
        return self.area_wh[1] // ph, self.area_wh[0] // pw, self.n_bands

    @property
    def min_frame_shape(self) -> tuple[int, int]:
        """Smallest (rows, cols) a frame must have to hold the filter area."""
        return self.offset_xy[1] + self.area_wh[1], self.offset_xy[0] + self.area_wh[0]

    def with_offset(self, offset_xy: tuple[int, int]) -> "CameraProfile":
        """The same profile with the filter area at another offset (e.g. a cropped frame)."""
        return replace(self, offset_xy=offset_xy)


def band_positions(scm: np.ndarray) -> np.ndarray:
    """The pattern position each output band of ``SCM @ spectrum`` comes from, ``int (B,)``.

    Rule (stated in the profiles as ``wavelength_rule``): the one-to-one assignment of
    output bands to pattern positions that maximises the summed SCM weight
    (``scipy.optimize.linear_sum_assignment`` on ``SCM``). For a near-permutation SCM
    this is each row's dominant input; where two rows share one dominant input (rows
    23 and 24 of the thesis SCM both peak on position 3) the assignment gives them
    distinct positions, so no two bands claim the same wavelength.
    """
    from scipy.optimize import linear_sum_assignment

    matrix = np.asarray(scm, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"SCM must be square, got shape {matrix.shape}")
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    out = np.empty(matrix.shape[0], dtype=np.int64)
    out[rows] = cols
    return out


def band_wavelengths(scm: np.ndarray, position_wavelengths_nm) -> tuple[float, ...]:
    """Wavelength (nm) of each output band from per-pattern-position wavelengths (see :func:`band_positions`)."""
    positions = np.asarray(position_wavelengths_nm, dtype=np.float64)
    if positions.shape != (np.asarray(scm).shape[0],):
        raise ValueError(f"{positions.size} pattern-position wavelengths for an SCM of shape {np.asarray(scm).shape}")
    return tuple(float(w) for w in positions[band_positions(scm)])


def position_wavelengths(profile: "CameraProfile") -> tuple[float, ...] | None:
    """The per-pattern-position wavelengths a camera would write for ``profile`` (inverse of :func:`band_wavelengths`)."""
    if profile.wavelengths_nm is None:
        return None
    out = np.empty(profile.n_bands)
    out[band_positions(profile.scm)] = profile.wavelengths_nm
    return tuple(float(w) for w in out)


def _validate(profile: CameraProfile) -> CameraProfile:
    b = profile.n_bands
    if profile.scm.shape != (b, b):
        raise ProfileError(f"profile {profile.id!r}: SCM shape {profile.scm.shape} does not match {b} bands")
    if profile.wavelengths_nm is not None and len(profile.wavelengths_nm) != b:
        raise ProfileError(f"profile {profile.id!r}: {len(profile.wavelengths_nm)} wavelengths for {b} bands")
    if min(profile.pattern_wh) < 1 or min(profile.offset_xy) < 0:
        raise ProfileError(f"profile {profile.id!r}: invalid filter geometry")
    if profile.area_wh[0] < profile.pattern_wh[0] or profile.area_wh[1] < profile.pattern_wh[1]:
        raise ProfileError(
            f"profile {profile.id!r}: filter area {profile.area_wh} is smaller than one {profile.pattern_wh} pattern"
        )
    return profile


def list_profiles() -> list[str]:
    """Ids of the built-in profiles."""
    return sorted(p.stem for p in CAMERAS_DIR.glob("*.json"))


@lru_cache(maxsize=16)
def load_profile(name: str) -> CameraProfile:
    """Load a built-in profile by id. ``ProfileError`` names the known ids when unknown."""
    # Only ids of shipped files: a name like "../x" must not reach outside resources/cameras.
    path = CAMERAS_DIR / f"{name}.json"
    if not isinstance(name, str) or name not in list_profiles():
        raise ProfileError(f"unknown camera profile {name!r} (known: {', '.join(list_profiles())})")
    spec = json.loads(path.read_text())
    n = spec["pattern_wh"][0] * spec["pattern_wh"][1]
    if "scm_file" in spec:
        scm = np.loadtxt(CAMERAS_DIR / spec["scm_file"], delimiter=",", dtype=np.float64)
    else:
        scm = np.eye(n)
    scm = scm.astype(np.float32)
    scm.setflags(write=False)
    wl = spec.get("wavelengths_nm")
    return _validate(
        CameraProfile(
            id=spec["id"],
            sensor_shape=tuple(spec["sensor_shape"]),
            offset_xy=tuple(spec["offset_xy"]),
            area_wh=tuple(spec["area_wh"]),
            pattern_wh=tuple(spec["pattern_wh"]),
            wavelengths_nm=None if wl is None else tuple(float(w) for w in wl),
            scm=scm,
            camera_model=spec.get("camera_model"),
            wavelengths_nominal=True,
            geometry_source=f"profile {spec['id']}",
            calibrated_serial=spec.get("calibrated_serial"),
        )
    )


def calibration_note(profile: CameraProfile, serial: str | None) -> str:
    """One line on whose spectral calibration a capture gets (shown by info, classify --json, GUI, exports)."""
    if profile.id.startswith("metadata:"):
        return "no spectral correction for this camera (identity SCM; geometry and wavelengths from its metadata)"
    if serial and profile.calibrated_serial and serial == profile.calibrated_serial:
        return f"device calibration: SCM of profile {profile.id} measured on this camera (serial {serial})"
    who = f"camera serial {serial}" if serial else "this camera (serial unknown)"
    return f"model-level calibration: SCM of profile {profile.id}, not measured on {who}"


def profile_from_metadata(
    meta: CaptureMetadata, *, scm: np.ndarray | None = None, sensor_shape: tuple[int, int] | None = None
) -> CameraProfile:
    """Derive a profile from a frame's Ximea metadata (SCM = identity unless given).

    Band wavelengths come from the metadata's per-position list through :func:`band_wavelengths`.
    """
    if not meta.has_calibration:
        raise ProfileError("capture metadata carries no filter-area calibration")
    n = meta.pattern_wh[0] * meta.pattern_wh[1]
    matrix = np.eye(n, dtype=np.float32) if scm is None else np.asarray(scm, dtype=np.float32)
    ox, oy = meta.filter_offset_xy
    w, h = meta.filter_size_wh
    return _validate(
        CameraProfile(
            id=f"metadata:{meta.camera_model or 'camera'}",
            sensor_shape=sensor_shape or (oy + h, ox + w),
            offset_xy=(ox, oy),
            area_wh=(w, h),
            pattern_wh=meta.pattern_wh,
            wavelengths_nm=_metadata_band_wavelengths(meta, matrix),
            scm=matrix,
            camera_model=meta.camera_model,
            wavelengths_nominal=False,
            geometry_source=f"metadata ({meta.camera_model or 'camera'})",
        )
    )


def _metadata_band_wavelengths(meta: CaptureMetadata, scm: np.ndarray) -> tuple[float, ...] | None:
    wl = meta.wavelengths_nm
    if wl is None or len(wl) != scm.shape[0]:
        return wl  # _validate names a count that does not fit
    return band_wavelengths(scm, wl)


def resolve_profile(metadata: CaptureMetadata | None, name: str | None = None) -> CameraProfile:
    """The profile for a capture.

    An explicit ``name`` wins. Otherwise the frame's own calibration metadata is
    authoritative for the geometry (offset and size of the filter area, which
    change with the sensor region read out). When the metadata names the camera
    model and mosaic pattern of a built-in profile, that profile's id and SCM
    apply — the spectral correction belongs to the camera's filters, not to the
    region read out — with band wavelengths derived from the metadata's
    per-position wavelengths through the SCM (:func:`band_wavelengths`). Other cameras get an
    identity SCM. Without metadata, the thesis profile.
    """
    if name is not None:
        return load_profile(name)
    if metadata is None or not metadata.has_calibration:
        return load_profile(THESIS_PROFILE_ID)
    for profile_id in list_profiles():
        builtin = load_profile(profile_id)
        if builtin.camera_model == metadata.camera_model and builtin.pattern_wh == metadata.pattern_wh:
            wavelengths, nominal = builtin.wavelengths_nm, True
            if metadata.wavelengths_nm and len(metadata.wavelengths_nm) == builtin.n_bands:
                wavelengths, nominal = band_wavelengths(builtin.scm, metadata.wavelengths_nm), False
            return _validate(
                replace(
                    builtin,
                    offset_xy=metadata.filter_offset_xy,
                    area_wh=metadata.filter_size_wh,
                    wavelengths_nm=wavelengths,
                    wavelengths_nominal=nominal,
                    geometry_source=f"metadata ({metadata.camera_model}), SCM of profile {builtin.id}",
                )
            )
    return profile_from_metadata(metadata)


def describe_calibration(cube, serial: str | None) -> str:
    """One line for the capture panel: profile, SCM owner, geometry source, where the wavelengths came from.

    ``cube`` is a :class:`core.spectral.chain.Cube` (its profile id, geometry source and nominal flag).
    """
    if cube.profile_id in list_profiles():
        note = calibration_note(load_profile(cube.profile_id), serial)
    else:
        note = f"profile {cube.profile_id}"
    wavelengths = "nominal wavelengths" if cube.wavelengths_nominal else "wavelengths from the camera"
    return f"{note}; geometry from {cube.geometry_source or 'the profile'}; {wavelengths}"
