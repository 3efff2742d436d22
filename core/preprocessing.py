"""The thesis preprocessing chain (section 3.1.2), vectorised.

1. calibrate: ``(raw - dark) / (white - dark)`` in float32;
2. form the cube: ``cube[R, C, b] = cal[oy + ph*R + b // pw, ox + pw*C + b % pw]``;
3. spectral correction: ``cube @ SCM.T``;
4. RMS normalisation: each spectrum divided by ``sqrt(mean(spectrum ** 2))``.

Pixels whose ``white - dark <= 0`` in any band, or whose RMS is 0, are invalid:
they are 0 in the cube and ``False`` in the validity mask, never inf or NaN.
Only the filter area is calibrated, so a full-sensor frame costs no more than a
cropped one. This module never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.camera_profiles import CameraProfile
from core.errors import CaptureError, ProfileError


@dataclass(frozen=True)
class Cube:
    """A preprocessed hyperspectral cube."""

    data: np.ndarray  # float32 (H, W, B), RMS-normalised; invalid pixels are 0
    valid: np.ndarray  # bool (H, W)
    wavelengths_nm: np.ndarray | None  # float32 (B,), nm per band (after the SCM)
    profile_id: str
    brightness: np.ndarray | None = None  # float32 (H, W): RMS before normalisation (for display)
    wavelengths_nominal: bool = True  # the profile's nominal list, not the camera's own calibration
    origin_rc: tuple[int, int] = (0, 0)  # (row, col) of data[0, 0] in the full-sensor cube
    geometry_source: str = ""  # "profile NAME" or "metadata (MODEL)..."

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape


@dataclass(frozen=True)
class FrameWindow:
    """Where whole mosaic patterns of the filter area lie in a frame.

    Frame rows ``row0 : row0 + ph*h`` and columns ``col0 : col0 + pw*w`` hold cube rows
    ``cube_row0 : cube_row0 + h`` and columns ``cube_col0 : cube_col0 + w`` of the
    full-sensor cube; pattern position ``(0, 0)`` is at ``(row0, col0)``.
    """

    row0: int
    col0: int
    h: int
    w: int
    cube_row0: int
    cube_col0: int


def filter_window(
    frame_shape: tuple[int, int], profile: CameraProfile, *, frame_offset_xy: tuple[int, int] | None = None, name: str = "frame"
) -> FrameWindow:
    """The :class:`FrameWindow` of a ``(rows, cols)`` frame whose pixel (0, 0) is sensor ``frame_offset_xy``.

    The mosaic is fixed to the SENSOR: frame pixel (r, c) is sensor pixel
    (r + offset_y, c + offset_x), and its pattern position is counted from the
    profile's filter-area offset (sensor coordinates). With ``frame_offset_xy`` None
    (no region-of-interest metadata) the frame must hold the whole filter area.
    """
    rows, cols = frame_shape
    pw, ph = profile.pattern_wh
    ox, oy = profile.offset_xy
    full_h, full_w, _ = profile.cube_shape
    if frame_offset_xy is None:
        need_rows, need_cols = profile.min_frame_shape
        if rows < need_rows or cols < need_cols:
            raise CaptureError(
                name,
                f"frame {rows}x{cols} is too small for the filter area of {profile.geometry_label} "
                f"(needs {need_rows}x{need_cols}; a region-of-interest frame needs its AbsoluteOffset metadata)",
            )
        return FrameWindow(oy, ox, full_h, full_w, 0, 0)
    ax, ay = frame_offset_xy

    def axis(start: int, size: int, origin: int, pattern: int, n_full: int) -> tuple[int, int, int]:
        # First and one-past-last whole pattern of the filter area inside sensor [start, start + size).
        first = max(0, -((origin - start) // pattern))  # ceil((start - origin) / pattern), at least 0
        last = min(n_full, (start + size - origin) // pattern)
        return first, last - first, origin + pattern * first - start

    r_first, h, row0 = axis(ay, rows, oy, ph, full_h)
    c_first, w, col0 = axis(ax, cols, ox, pw, full_w)
    if h < 1 or w < 1:
        raise CaptureError(
            name,
            f"frame {rows}x{cols} at sensor offset ({ax}, {ay}) holds no whole {pw}x{ph} pattern of the filter area "
            f"of {profile.geometry_label}",
        )
    return FrameWindow(row0, col0, h, w, r_first, c_first)


def crop_filter_area(
    frame: np.ndarray, profile: CameraProfile, *, name: str = "frame", frame_offset_xy: tuple[int, int] | None = None
) -> np.ndarray:
    """The part of a 2-D frame covered by whole mosaic patterns, ``(ph*H, pw*W)`` (see :func:`filter_window`)."""
    if frame.ndim != 2:
        raise CaptureError(name, f"expected a 2-D frame, got shape {frame.shape}")
    win = filter_window(frame.shape, profile, frame_offset_xy=frame_offset_xy, name=name)
    pw, ph = profile.pattern_wh
    return frame[win.row0 : win.row0 + ph * win.h, win.col0 : win.col0 + pw * win.w]


def calibrate(raw: np.ndarray, dark: np.ndarray, white: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance ``(raw - dark) / (white - dark)`` as float32, and where it is defined.

    Returns ``(reflectance, defined)``, both the frames' shape; where ``white - dark <= 0``
    the reflectance is 0 and ``defined`` is False.
    """
    reflectance, defined, _ = _calibrate(raw, dark, white)
    return reflectance, defined


def _calibrate(raw: np.ndarray, dark: np.ndarray, white: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    if not (raw.shape == dark.shape == white.shape):
        raise ValueError(f"raw {raw.shape}, dark {dark.shape} and white {white.shape} must have one shape")
    # Contiguous arithmetic in frame order, in place where possible: the cheapest order
    # (the cube's strided mosaic order costs more than one transposed copy afterwards).
    reflectance = np.subtract(raw, dark, dtype=np.float32)
    denominator = np.subtract(white, dark, dtype=np.float32)
    defined = denominator > 0
    all_defined = bool(defined.all())
    if all_defined:  # good references: no masking work at all
        np.divide(reflectance, denominator, out=reflectance)
    else:
        np.divide(reflectance, denominator, out=reflectance, where=defined)
        reflectance[~defined] = 0.0
    return reflectance, defined, all_defined


def form_cube(frame: np.ndarray, profile: CameraProfile) -> np.ndarray:
    """Mosaic frame to cube ``(H, W, B)``; band ``b`` is pattern row ``b // pw``, column ``b % pw``."""
    return form_cube_area(crop_filter_area(frame, profile), profile)


def spectral_correction(cube: np.ndarray, scm: np.ndarray) -> np.ndarray:
    """``out[..., i] = sum_j SCM[i, j] * cube[..., j]`` (per-pixel ``SCM @ spectrum``)."""
    h, w, b = cube.shape
    if scm.shape != (b, b):
        raise ValueError(f"SCM shape {scm.shape} does not match {b} bands")
    # One small (W, B) x (B, B) product per cube row rather than one (H*W, B) product:
    # each is below OpenBLAS's threading threshold, so no helper threads spin. On 2 busy
    # cores (GUI, inference, other jobs) the single big threaded product was 3-10x slower.
    return np.matmul(cube, np.asarray(scm, dtype=np.float32).T)


def rms_normalise(cube: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide each spectrum by its RMS. Returns ``(normalised, rms (H, W), rms > 0)``, in place on ``cube``."""
    rms = np.sqrt(np.einsum("hwb,hwb->hw", cube, cube) / cube.shape[-1], dtype=np.float32)
    ok = rms > 0
    scale = np.zeros_like(rms)
    np.divide(1.0, rms, out=scale, where=ok)
    cube *= scale[..., None]
    return cube, rms, ok


def preprocess(
    raw: np.ndarray,
    dark: np.ndarray,
    white: np.ndarray,
    profile: CameraProfile,
    *,
    frame_offset_xy: tuple[int, int] | None = None,
) -> Cube:
    """Raw, dark and white 2-D frames ``(rows, cols)`` to a normalised cube and validity mask.

    Frames are uint8/uint16 counts (any integer or float dtype works), at least
    ``profile.min_frame_shape`` unless ``frame_offset_xy`` (the frame's origin on the
    sensor, from ``AbsoluteOffsetX/Y``) says it is a region of interest: then the
    cube is exactly the rows and columns of the full-sensor cube the frame covers
    (``Cube.origin_rc``). Extra rows and columns beyond whole patterns are ignored.
    Raises ``CaptureError`` named ``"raw"``, ``"dark"`` or ``"white"``.
    """
    frames = {"raw": np.asarray(raw), "dark": np.asarray(dark), "white": np.asarray(white)}
    areas = {
        name: crop_filter_area(frame, profile, name=name, frame_offset_xy=frame_offset_xy) for name, frame in frames.items()
    }  # validates first
    for name in ("dark", "white"):
        if frames[name].shape != frames["raw"].shape:
            raise CaptureError(name, f"reference shape {frames[name].shape} differs from raw frame {frames['raw'].shape}")
    reflectance, pattern_ok = calibrated_cube(areas["raw"], areas["dark"], areas["white"], profile)
    cube = spectral_correction(reflectance, profile.scm)
    cube, rms, rms_ok = rms_normalise(cube)
    valid = pattern_ok & rms_ok & np.isfinite(rms)
    if not valid.all():
        cube[~valid] = 0.0
        rms[~valid] = 0.0
    wavelengths = None if profile.wavelengths_nm is None else np.asarray(profile.wavelengths_nm, dtype=np.float32)
    origin = (0, 0)
    if frame_offset_xy is not None:
        win = filter_window(frames["raw"].shape, profile, frame_offset_xy=frame_offset_xy)
        origin = (win.cube_row0, win.cube_col0)
    return Cube(
        cube, valid, wavelengths, profile.id, rms, profile.wavelengths_nominal, origin, profile.geometry_label
    )


def calibrated_cube(
    raw_area: np.ndarray, dark_area: np.ndarray, white_area: np.ndarray, profile: CameraProfile
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1 and 2: ``form_cube(calibrate(...))`` for frames cropped to the filter area.

    Returns the reflectance cube float32 ``(H, W, B)`` (0 where ``white <= dark``) and
    ``bool (H, W)``, True where every band of the pixel's pattern has ``white > dark``.
    """
    reflectance, defined, all_defined = _calibrate(raw_area, dark_area, white_area)
    cube = form_cube_area(reflectance, profile)
    if all_defined:  # skip forming a boolean cube (3 ms)
        return cube, np.ones(cube.shape[:2], dtype=bool)
    return cube, form_cube_area(defined, profile).all(axis=-1)


def form_cube_area(area: np.ndarray, profile: CameraProfile) -> np.ndarray:
    """Like :func:`form_cube` for a frame already cropped to whole patterns ``(ph*H, pw*W)``."""
    pw, ph = profile.pattern_wh
    h, w, b = area.shape[0] // ph, area.shape[1] // pw, profile.n_bands
    # (ph*H, pw*W) -> (H, ph, W, pw) -> (H, W, ph, pw) -> (H, W, B): a strided view, then one copy.
    return np.ascontiguousarray(area.reshape(h, ph, w, pw).transpose(0, 2, 1, 3)).reshape(h, w, b)


def preprocess_capture(capture, profile: CameraProfile | None = None, *, profile_name: str | None = None) -> Cube:
    """Preprocess a :class:`core.capture_io.Capture`, resolving its profile when not given.

    Errors name the capture's files: a frame that does not fit the profile names
    that frame's path, a profile that cannot be resolved names the raw file.
    """
    from core.camera_profiles import resolve_profile

    if profile is None:
        try:
            profile = resolve_profile(capture.metadata, profile_name)
        except ProfileError as exc:
            if capture.raw_path is None:
                raise
            raise ProfileError(f"{capture.raw_path}: {exc}") from None
    offset = None if capture.metadata is None else capture.metadata.absolute_offset_xy
    try:
        return preprocess(capture.raw, capture.dark, capture.white, profile, frame_offset_xy=offset)
    except CaptureError as exc:
        paths = {"raw": capture.raw_path, "dark": capture.dark_path, "white": capture.white_path}
        path = paths.get(exc.path or "")
        if path is None:
            raise
        raise CaptureError(path, exc.problem) from None
