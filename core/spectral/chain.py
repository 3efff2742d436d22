"""The thesis preprocessing chain (section 3.1.2), vectorised.

1. calibrate: ``(raw - dark) / (white - dark)`` in float32;
2. form the cube: ``cube[R, C, b] = cal[oy + ph*R + b // pw, ox + pw*C + b % pw]``;
3. spectral correction: ``cube @ SCM.T``;
4. RMS normalisation: each spectrum divided by ``sqrt(mean(spectrum ** 2))``.

Pixels whose ``white - dark <= 0`` in any band, or whose RMS is 0, are invalid:
they are 0 in the cube and ``False`` in the validity mask, never inf or NaN.
Pixels whose raw count is clipped in any band (at the sensor's full scale, or at or
below the dark level) are marked in ``Cube.clipped``: their spectrum is not a
measurement, so they are never classified (``core.model.inference``).
Only the filter area is calibrated, so a full-sensor frame costs no more than a
cropped one. This module never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.capture.camera_profiles import CameraProfile
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
    clipped: np.ndarray | None = None  # bool (H, W): raw at full scale or <= dark in any band; None = not checked

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
    denominator = np.subtract(white, dark, dtype=np.float32)
    defined = denominator > 0
    return _calibrate_with(raw, dark, denominator, defined, bool(defined.all()))


def _calibrate_with(
    raw: np.ndarray, dark: np.ndarray, denominator: np.ndarray, defined: np.ndarray, all_defined: bool
) -> tuple[np.ndarray, np.ndarray, bool]:
    """The raw-dependent half of :func:`_calibrate`, given the reference-only half (the same operations)."""
    # Contiguous arithmetic in frame order, in place where possible: the cheapest order
    # (the cube's strided mosaic order costs more than one transposed copy afterwards).
    # Divide, never multiply by a cached reciprocal: that would change the last bit.
    reflectance = np.subtract(raw, dark, dtype=np.float32)
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


@dataclass(frozen=True)
class CalibrationReferences:
    """What calibration needs from one dark/white pair, computed once per pair (:func:`calibration_references`).

    Live mode classifies many raw frames against one pair; passing this to
    :func:`preprocess` (or :func:`core.model.inference.prepare`) skips the reference half
    of calibration (``white - dark``, where it is > 0, the cube's pattern mask)
    while giving bit-identical cubes: the raw half runs the very same operations.
    """

    dark: np.ndarray  # the full dark frame (rows, cols), as given (kept to check it is the one used)
    white: np.ndarray  # the full white frame (rows, cols), as given
    profile_id: str
    frame_offset_xy: tuple[int, int] | None
    dark_area: np.ndarray  # dark cropped to the filter area (ph*H, pw*W), a view
    denominator: np.ndarray  # float32 (ph*H, pw*W): white - dark, counts
    defined: np.ndarray  # bool (ph*H, pw*W): denominator > 0
    all_defined: bool
    pattern_ok: np.ndarray  # bool (H, W): every band of the pixel's pattern defined (read-only)

    def fits(self, dark: np.ndarray, white: np.ndarray, profile: CameraProfile, frame_offset_xy) -> bool:
        """True when this was computed from exactly these frames (same objects), profile and offset."""
        offset = None if frame_offset_xy is None else tuple(frame_offset_xy)
        return (
            self.dark is dark and self.white is white and self.profile_id == profile.id and self.frame_offset_xy == offset
        )


def calibration_references(
    dark: np.ndarray, white: np.ndarray, profile: CameraProfile, *, frame_offset_xy: tuple[int, int] | None = None
) -> CalibrationReferences:
    """The reference-only half of calibration for ``dark`` / ``white`` frames ``(rows, cols)``.

    Raises ``CaptureError`` named ``"dark"`` / ``"white"`` as :func:`preprocess` does.
    The frames must not be modified afterwards (they are kept, not copied).
    """
    dark, white = np.asarray(dark), np.asarray(white)
    dark_area = crop_filter_area(dark, profile, name="dark", frame_offset_xy=frame_offset_xy)
    white_area = crop_filter_area(white, profile, name="white", frame_offset_xy=frame_offset_xy)
    if white.shape != dark.shape:
        raise CaptureError("white", f"reference shape {white.shape} differs from dark {dark.shape}")
    denominator = np.subtract(white_area, dark_area, dtype=np.float32)
    defined = denominator > 0
    all_defined = bool(defined.all())
    pw, ph = profile.pattern_wh
    shape = (dark_area.shape[0] // ph, dark_area.shape[1] // pw)
    pattern_ok = np.ones(shape, dtype=bool) if all_defined else form_cube_area(defined, profile).all(axis=-1)
    for array in (denominator, defined, pattern_ok):
        array.flags.writeable = False  # shared by every capture of the pair
    offset = None if frame_offset_xy is None else tuple(frame_offset_xy)
    return CalibrationReferences(
        dark, white, profile.id, offset, dark_area, denominator, defined, all_defined, pattern_ok
    )


def preprocess(
    raw: np.ndarray,
    dark: np.ndarray,
    white: np.ndarray,
    profile: CameraProfile,
    *,
    frame_offset_xy: tuple[int, int] | None = None,
    references: CalibrationReferences | None = None,
    full_scale: int | None = None,
    threads: int | None = 1,
) -> Cube:
    """Raw, dark and white 2-D frames ``(rows, cols)`` to a normalised cube and validity mask.

    Frames are uint8/uint16 counts (any integer or float dtype works), at least
    ``profile.min_frame_shape`` unless ``frame_offset_xy`` (the frame's origin on the
    sensor, from ``AbsoluteOffsetX/Y``) says it is a region of interest: then the
    cube is exactly the rows and columns of the full-sensor cube the frame covers
    (``Cube.origin_rc``). Extra rows and columns beyond whole patterns are ignored.
    ``references``: :func:`calibration_references` of these very ``dark`` / ``white``
    frames (checked: ``ValueError`` otherwise); the cube is bit-identical, only faster.
    ``full_scale``: the sensor's largest count (``2**bits - 1``; default: from the raw's
    type and data, see :func:`clipped_pixels`). ``threads`` (None: every usable core): the
    cube is made in that many bands of rows at once, bit-identical.
    Raises ``CaptureError`` named ``"raw"``, ``"dark"`` or ``"white"``.
    """
    if references is not None and not references.fits(dark, white, profile, frame_offset_xy):
        raise ValueError("the calibration references were computed from other frames, profile or offset")
    frames = {"raw": np.asarray(raw), "dark": np.asarray(dark), "white": np.asarray(white)}
    names = ("raw",) if references is not None else ("raw", "dark", "white")
    areas = {
        name: crop_filter_area(frames[name], profile, name=name, frame_offset_xy=frame_offset_xy) for name in names
    }  # validates first
    for name in ("dark", "white"):
        if frames[name].shape != frames["raw"].shape:
            raise CaptureError(name, f"reference shape {frames[name].shape} differs from raw frame {frames['raw'].shape}")
    if threads != 1:  # the reference half first (as calibrate does it), then the raw half in bands
        if references is None:
            references = calibration_references(frames["dark"], frames["white"], profile, frame_offset_xy=frame_offset_xy)
        cube, rms, rms_ok, clipped = _normalised_in_bands(areas["raw"], references, profile, full_scale, threads)
        pattern_ok = references.pattern_ok
    else:
        if references is None:
            reflectance, pattern_ok = calibrated_cube(areas["raw"], areas["dark"], areas["white"], profile)
        else:
            flat, _, _ = _calibrate_with(
                areas["raw"], references.dark_area, references.denominator, references.defined, references.all_defined
            )
            reflectance, pattern_ok = form_cube_area(flat, profile), references.pattern_ok
        dark_area = areas["dark"] if references is None else references.dark_area
        clipped = clipped_pixels(areas["raw"], dark_area, profile.pattern_wh, full_scale=full_scale)
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
        cube, valid, wavelengths, profile.id, rms, profile.wavelengths_nominal, origin, profile.geometry_label, clipped
    )


def _normalised_in_bands(
    raw_area: np.ndarray, references: CalibrationReferences, profile: CameraProfile, full_scale: int | None,
    threads: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-4 with cached references, in bands of cube rows on ``threads`` threads:
    ``(cube (H, W, B) normalised, rms (H, W), rms > 0, clipped (H, W))``.

    Every step works per pixel (calibration, clipping), per pattern (mosaic to cube) or per
    cube row (the SCM product, the RMS), so each band does the same operations on the same
    numbers as the whole: the result is bit-identical.
    """
    from core.cpu import run_parallel, usable_cores

    pw, ph = profile.pattern_wh
    h, w, b = raw_area.shape[0] // ph, raw_area.shape[1] // pw, profile.n_bands
    full = sensor_full_scale(raw_area) if full_scale is None else full_scale
    scm_t = np.asarray(profile.scm, dtype=np.float32).T
    cube = np.empty((h, w, b), np.float32)
    rms = np.empty((h, w), np.float32)
    rms_ok = np.empty((h, w), bool)
    clipped = np.empty((h, w), bool)
    n = max(1, min(usable_cores() if threads is None else threads, h))
    edges = [round(i * h / n) for i in range(n + 1)]

    def band(r0: int, r1: int) -> None:
        rows = slice(r0 * ph, r1 * ph)
        flat, _, _ = _calibrate_with(raw_area[rows], references.dark_area[rows], references.denominator[rows],
                                     references.defined[rows], references.all_defined)
        np.matmul(form_cube_area(flat, profile), scm_t, out=cube[r0:r1])
        _, rms[r0:r1], rms_ok[r0:r1] = rms_normalise(cube[r0:r1])
        clipped[r0:r1] = clipped_pixels(raw_area[rows], references.dark_area[rows], profile.pattern_wh, full_scale=full)

    run_parallel([lambda r0=r0, r1=r1: band(r0, r1) for r0, r1 in zip(edges, edges[1:])], threads=n)
    return cube, rms, rms_ok, clipped


def sensor_full_scale(raw: np.ndarray, bits: int | None = None) -> int:
    """The largest count the sensor gives: ``2**bits - 1`` when the camera says its bit depth, else
    255 for uint8 and, for wider types, the smallest of 10/12/16-bit full scale the data fits
    (10- and 12-bit sensors store counts in uint16)."""
    if bits is not None and 1 <= bits <= 16:
        return 2**bits - 1
    raw = np.asarray(raw)
    if raw.dtype == np.uint8:
        return 255
    top = float(raw.max()) if raw.size else 0.0
    return next((level for level in (1023, 4095, 65535) if top <= level), 65535)


def capture_full_scale(capture) -> int:
    """:func:`sensor_full_scale` of a capture: the camera's stated bit depth, else its raw and white data."""
    from core.capture.quality import sensor_bit_depth

    bits = sensor_bit_depth(capture.metadata)
    if bits is not None:
        return sensor_full_scale(capture.raw, bits)
    return max(sensor_full_scale(capture.raw), sensor_full_scale(capture.white))


def clipped_pixels(
    raw_area: np.ndarray, dark_area: np.ndarray, pattern_wh: tuple[int, int], *, full_scale: int | None = None
) -> np.ndarray:
    """``bool (H, W)``: cube pixels with a clipped raw count in any band of their pattern.

    ``raw_area`` / ``dark_area``: frames cropped to whole patterns ``(ph*H, pw*W)``, counts.
    Clipped = at or above ``full_scale`` (saturated: the true value is higher) or at or
    below the dark level (no signal above the sensor's offset: the true value is unknown).
    Either way the pixel's spectrum is not a measurement, whatever its shape.
    """
    if raw_area.shape != dark_area.shape:
        raise ValueError(f"raw area {raw_area.shape} and dark area {dark_area.shape} must have one shape")
    pw, ph = pattern_wh
    h, w = raw_area.shape[0] // ph, raw_area.shape[1] // pw
    full = sensor_full_scale(raw_area) if full_scale is None else int(full_scale)
    if full < 1:
        raise ValueError(f"full_scale must be >= 1, got {full_scale}")
    bad = raw_area[: ph * h, : pw * w] >= full
    bad |= raw_area[: ph * h, : pw * w] <= dark_area[: ph * h, : pw * w]
    # Reduce each pw x ph pattern (one cube pixel) with ph + pw strided ORs: 3x faster than
    # any() over the axes of a (H, ph, W, pw) view, and no (H, W, B) cube is formed.
    rows = bad[0::ph].copy()
    for r in range(1, ph):
        rows |= bad[r::ph]
    out = rows[:, 0::pw].copy()
    for c in range(1, pw):
        out |= rows[:, c::pw]
    return out


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


def preprocess_capture(
    capture,
    profile: CameraProfile | None = None,
    *,
    profile_name: str | None = None,
    references: "CalibrationCache | CalibrationReferences | None" = None,
    full_scale: int | None = None,
    threads: int | None = 1,
) -> Cube:
    """Preprocess a :class:`core.capture.files.Capture`, resolving its profile when not given.

    ``references``: precomputed :class:`CalibrationReferences` of the capture's own
    dark/white frames, or a :class:`CalibrationCache` to take them from (and fill);
    the cube is bit-identical to the one made without. ``threads``: see :func:`preprocess`.

    Errors name the capture's files: a frame that does not fit the profile names
    that frame's path, a profile that cannot be resolved names the raw file.
    """
    from core.capture.camera_profiles import resolve_profile

    if profile is None:
        try:
            profile = resolve_profile(capture.metadata, profile_name)
        except ProfileError as exc:
            if capture.raw_path is None:
                raise
            raise ProfileError(f"{capture.raw_path}: {exc}") from None
    offset = None if capture.metadata is None else capture.metadata.absolute_offset_xy
    if full_scale is None:
        full_scale = capture_full_scale(capture)
    try:
        if isinstance(references, CalibrationCache):
            references = references.get(capture.dark, capture.white, profile, frame_offset_xy=offset)
        return preprocess(
            capture.raw, capture.dark, capture.white, profile,
            frame_offset_xy=offset, references=references, full_scale=full_scale, threads=threads,
        )
    except CaptureError as exc:
        paths = {"raw": capture.raw_path, "dark": capture.dark_path, "white": capture.white_path}
        path = paths.get(exc.path or "")
        if path is None:
            raise
        raise CaptureError(path, exc.problem) from None


class CalibrationCache:
    """The :class:`CalibrationReferences` of the last ``size`` reference pairs, by frame identity.

    Keyed by the dark and white frame objects (kept alive by the entries, so an id
    is never reused while cached), profile and offset. Live mode reads each pair
    once (:class:`core.capture.source.References`), so the same objects come with
    every capture of the pair. Not thread-safe: one per thread that prepares.
    """

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._entries: list[CalibrationReferences] = []  # most recently used last
        self.hits = self.misses = 0

    def get(
        self, dark: np.ndarray, white: np.ndarray, profile: CameraProfile, *, frame_offset_xy: tuple[int, int] | None = None
    ) -> CalibrationReferences:
        for entry in self._entries:
            if entry.fits(dark, white, profile, frame_offset_xy):
                self._entries.remove(entry)
                self._entries.append(entry)
                self.hits += 1
                return entry
        self.misses += 1
        entry = calibration_references(dark, white, profile, frame_offset_xy=frame_offset_xy)
        self._entries = [*self._entries[-(self.size - 1):], entry] if self.size > 1 else [entry]
        return entry
