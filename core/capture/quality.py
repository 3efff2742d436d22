"""Capture quality checks, run on every capture before any map is shown.

``assess_quality(capture)`` looks at a strided sample of the three frames (every
4th row and column: 139k of a full sensor's 2.2M pixels, a few ms) and at their
metadata, and returns a :class:`QualityReport`: status ``"ok"``, ``"warning"`` or
``"unusable"`` (the worst of its checks) and every check with its measured fraction.

Checks (code: what it measures, warning / unusable thresholds):

- ``bit_depth_mismatch``: the three frames differ in pixel type or sensor bit depth (unusable).
- ``saturated``: raw pixels at the sensor's full scale (2 % / 25 %).
- ``white_saturated``: white-reference pixels at full scale (2 % / 25 %).
- ``underexposed``: raw barely above dark, ``raw - dark < 2 %`` of full scale (30 % / 90 %).
- ``raw_beyond_references``: raw counts above the full scale of the references' bit depth
  (1 % / 10 %): a frame from another sensor mode, scaled, or not a raw frame at all.
- ``white_not_above_dark``: ``white <= dark`` (1 % / 50 %): swapped or missing references.
- ``raw_matches_white`` / ``raw_matches_dark``: raw within noise of a reference (- / 90 %):
  the reference given as the raw, or the raw given as a reference.
- ``reference_metadata``: a reference's serial, exposure, gain or geometry differs from the raw's (warning).
- ``flat_frame``: the raw frame holds (nearly) one value, no image at all (unusable).

``core.spectral.tissue`` adds ``featureless`` (no tissue texture, spectra unlike tissue) from the cube.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import NeuroHSIError

SEVERITIES = ("ok", "warning", "unusable")
OOD_WARNING_FRACTION = 0.20  # above this share of valid pixels out of distribution, quality is a warning
_STRIDE = 4
# (warning, unusable) fraction thresholds per check
_THRESHOLDS = {
    "saturated": (0.02, 0.25),
    "white_saturated": (0.02, 0.25),
    "underexposed": (0.30, 0.90),
    "white_not_above_dark": (0.01, 0.50),
    "raw_beyond_references": (0.01, 0.10),
    "raw_matches_white": (None, 0.90),
    "raw_matches_dark": (None, 0.90),
}
_UNDEREXPOSED_LEVEL = 0.02  # of full scale above dark
_FLAT_FRAME_STD = 0.5  # counts: a real frame's mosaic alone spreads its counts far wider
_MATCH_COUNTS = 3  # raw within this many counts (or 1 % of white - dark) of a reference "matches" it


@dataclass(frozen=True)
class QualityCheck:
    """One check: ``severity`` "ok" | "warning" | "unusable"; ``fraction`` of sampled pixels, or None."""

    code: str
    severity: str
    message: str
    fraction: float | None = None


@dataclass(frozen=True)
class QualityReport:
    """The worst severity of ``checks`` as ``status``."""

    status: str
    checks: tuple[QualityCheck, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> bool:
        return self.status != "unusable"

    @property
    def problems(self) -> tuple[QualityCheck, ...]:
        """The checks that are not "ok", worst first."""
        return tuple(sorted((c for c in self.checks if c.severity != "ok"), key=lambda c: -SEVERITIES.index(c.severity)))

    @property
    def reason(self) -> str:
        """One line for a user: the problems' messages, or "capture quality ok"."""
        problems = self.problems
        return "; ".join(c.message for c in problems) if problems else "capture quality ok"

    def with_check(self, check: QualityCheck) -> "QualityReport":
        """This report with one more check (e.g. the out-of-distribution fraction, known after classifying)."""
        return make_report((*self.checks, check))

    def to_dict(self) -> dict:
        return {"status": self.status, "checks": [asdict(c) for c in self.checks]}

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        checks = tuple(
            QualityCheck(str(c["code"]), str(c["severity"]), str(c["message"]), c.get("fraction")) for c in d.get("checks", [])
        )
        return make_report(checks)


class UnusableCaptureError(NeuroHSIError, ValueError):
    """A capture whose quality is "unusable": no map unless forced. ``report`` says why."""

    def __init__(self, report: QualityReport, name: str | None = None) -> None:
        self.report = report
        where = f"{name}: " if name else ""
        super().__init__(f"{where}capture unusable, no map made: {report.reason} (use --force / 'Show anyway' to map it anyway)")


def require_usable(report: QualityReport | None, *, force: bool = False, name: str | None = None) -> None:
    """Raise :class:`UnusableCaptureError` for an unusable report unless ``force``."""
    if report is not None and not report.usable and not force:
        raise UnusableCaptureError(report, name)


def ood_check(result) -> QualityCheck:
    """The quality check of a :class:`core.spectral.ood.OodResult`: a warning above :data:`OOD_WARNING_FRACTION`."""

    if not result.available:
        return QualityCheck("out_of_distribution", "ok", result.message, None)
    severity = "warning" if result.fraction > OOD_WARNING_FRACTION else "ok"
    return QualityCheck("out_of_distribution", severity, result.message, round(result.fraction, 6))


def make_report(checks) -> QualityReport:
    """A report whose status is the worst severity of ``checks``."""
    checks = tuple(checks)
    worst = max((SEVERITIES.index(c.severity) for c in checks), default=0)
    return QualityReport(SEVERITIES[worst], checks)


def graded(code: str, fraction: float, what: str, thresholds: tuple[float | None, float | None]) -> QualityCheck:
    """A check whose severity grows with ``fraction`` (``what`` describes the pixels counted)."""
    warning, unusable = thresholds
    severity = "ok"
    if unusable is not None and fraction >= unusable:
        severity = "unusable"
    elif warning is not None and fraction >= warning:
        severity = "warning"
    return QualityCheck(code, severity, f"{100 * fraction:.1f} % of pixels {what}", round(float(fraction), 6))


def _bit_depth(frame: np.ndarray, metadata) -> int | None:
    return sensor_bit_depth(metadata)


def sensor_bit_depth(metadata) -> int | None:
    """Sensor bit depth from the xiAPI context when the camera says it, else None."""
    for key, value in (getattr(metadata, "api_context", None) or ()):
        if key.endswith(":SensorBitDepth") or key.endswith(":OutputDataBitDepth"):
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _full_scale(frames: list[np.ndarray], depths: list[int | None], samples: list[np.ndarray]) -> int:
    """Largest count the sensor can give: 2**bits - 1 from metadata, else from the type and the data."""
    known = [d for d in depths if d]
    if known and 1 <= max(known) <= 16:
        return 2 ** max(known) - 1
    if frames[0].dtype == np.uint8:
        return 255
    top = max(int(s.max()) for s in samples)
    # 10- and 12-bit sensors store counts in uint16: the smallest container the data fits.
    return next(level for level in (1023, 4095, 65535) if top <= level)


def assess_quality(capture) -> QualityReport:
    """Quality checks of a :class:`core.capture.files.Capture` (see the module docstring). A few ms."""
    frames = [np.asarray(capture.raw), np.asarray(capture.dark), np.asarray(capture.white)]
    metas = [capture.metadata, getattr(capture, "dark_metadata", None), getattr(capture, "white_metadata", None)]
    checks: list[QualityCheck] = []

    depths = [_bit_depth(f, m) for f, m in zip(frames, metas)]
    types = {str(f.dtype) for f in frames}
    known_depths = {d for d in depths if d is not None}
    if len(types) > 1 or len(known_depths) > 1:
        described = ", ".join(
            f"{name} {f.dtype}" + (f" ({d}-bit)" if d else "") for name, f, d in zip(("raw", "dark", "white"), frames, depths)
        )
        checks.append(QualityCheck("bit_depth_mismatch", "unusable", f"bit depths differ within the triplet: {described}"))
    else:
        checks.append(QualityCheck("bit_depth_mismatch", "ok", "raw, dark and white share one bit depth"))

    rows, cols = _filter_area(capture.metadata, frames[0].shape)
    raw, dark, white = (f[rows, cols][::_STRIDE, ::_STRIDE].astype(np.int32) for f in frames)
    full = _full_scale(frames, depths, [raw, white])
    n = raw.size
    signal = raw - dark
    span = white - dark
    checks.append(graded("saturated", np.count_nonzero(raw >= full) / n, f"saturated in the raw frame (count {full})", _THRESHOLDS["saturated"]))
    checks.append(
        graded("white_saturated", np.count_nonzero(white >= full) / n, "saturated in the white reference", _THRESHOLDS["white_saturated"])
    )
    checks.append(
        graded(
            "underexposed",
            np.count_nonzero(signal < _UNDEREXPOSED_LEVEL * full) / n,
            "under-exposed (raw barely above dark)",
            _THRESHOLDS["underexposed"],
        )
    )
    # The references fix the sensor's range (2**bits - 1 of their metadata, else the container
    # their counts fit): a raw frame far beyond it (16x a 10-bit range) was not taken with them.
    reference_full = _full_scale(frames[1:], depths[1:], [dark, white])
    checks.append(
        graded(
            "raw_beyond_references",
            np.count_nonzero(raw > reference_full) / n,
            f"above the references' full scale (count {reference_full})",
            _THRESHOLDS["raw_beyond_references"],
        )
    )
    checks.append(
        graded(
            "white_not_above_dark",
            np.count_nonzero(span <= 0) / n,
            "with white <= dark (references swapped or missing?)",
            _THRESHOLDS["white_not_above_dark"],
        )
    )
    tolerance = np.maximum(_MATCH_COUNTS, np.abs(span) // 100)
    checks.append(
        graded(
            "raw_matches_white",
            np.count_nonzero(np.abs(raw - white) <= tolerance) / n,
            "equal to the white reference (white given as the raw?)",
            _THRESHOLDS["raw_matches_white"],
        )
    )
    checks.append(
        graded(
            "raw_matches_dark",
            np.count_nonzero(np.abs(signal) <= tolerance) / n,
            "equal to the dark reference (dark given as the raw, or lens cap on?)",
            _THRESHOLDS["raw_matches_dark"],
        )
    )
    checks.append(_reference_metadata(metas))
    spread = float(raw.std()) if n else 0.0
    if spread < _FLAT_FRAME_STD:
        checks.append(QualityCheck("flat_frame", "unusable", f"the raw frame holds a single value ({int(np.median(raw))}): no image", 1.0))
    else:
        checks.append(QualityCheck("flat_frame", "ok", "the raw frame has an image", None))
    return make_report(checks)


def _filter_area(meta, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The frame's part under the filter (from the metadata; the whole frame when unknown).

    Outside the filter area a sensor may see no light at all, which is not a fault.
    """
    if meta is None or meta.filter_offset_xy is None or meta.filter_size_wh is None:
        return slice(None), slice(None)
    ax, ay = meta.absolute_offset_xy or (0, 0)
    (ox, oy), (w, h) = meta.filter_offset_xy, meta.filter_size_wh
    r0, r1 = max(0, oy - ay), min(shape[0], oy + h - ay)
    c0, c1 = max(0, ox - ax), min(shape[1], ox + w - ax)
    if r1 <= r0 or c1 <= c0:
        return slice(None), slice(None)
    return slice(r0, r1), slice(c0, c1)


def _geometry(meta):
    return (meta.active_area_wh, meta.absolute_offset_xy, meta.filter_offset_xy, meta.filter_size_wh, meta.pattern_wh)


def _reference_metadata(metas) -> QualityCheck:
    raw = metas[0]
    differences = []
    for name, ref in (("dark", metas[1]), ("white", metas[2])):
        if raw is None or ref is None:
            continue
        for what, a, b in (
            ("serial", raw.serial, ref.serial),
            ("exposure", raw.exposure_us, ref.exposure_us),
            ("gain", raw.gain_db, ref.gain_db),
            ("geometry", _geometry(raw), _geometry(ref)),
        ):
            if a is not None and b is not None and a != b:
                shown = "differs" if what == "geometry" else f"{b} vs raw {a}"
                differences.append(f"{name} {what} {shown}")
    if differences:
        return QualityCheck("reference_metadata", "warning", "references do not match the raw: " + ", ".join(differences))
    return QualityCheck("reference_metadata", "ok", "references' metadata matches the raw (where given)")


# A preprocessed cube (NEMESIS preProcessedImage, neurohsi preprocess .npz) has no frames: of the
# checks above only what shows in the cube applies (pixels the chain could not normalise), plus the
# out-of-distribution check added at classification (core.model.trust).
_INVALID_THRESHOLDS = (0.10, 0.90)


def assess_cube_quality(cube) -> QualityReport:
    """Quality checks that apply to a preprocessed cube (``cube.valid`` bool (H, W)): invalid pixels."""
    valid = np.asarray(cube.valid, dtype=bool)
    invalid = 1.0 - (np.count_nonzero(valid) / valid.size if valid.size else 0.0)
    return make_report((
        graded("invalid_pixels", invalid, "without a usable spectrum in the cube (NaN, zero or masked)",
               _INVALID_THRESHOLDS),
        QualityCheck("preprocessed_cube", "ok", "preprocessed cube: the frame and reference checks do not apply"),
    ))
