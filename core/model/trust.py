"""The trust facts of one classification in one place: quality report, out-of-distribution mask.

``trust_of(prepared_quality, model_info, cube)`` is what ``core.model.inference.classify_prepared``
attaches to a result; ``to_header`` / ``from_header`` carry the same facts through the
scoring service's JSON result header (the mask bit-packed, about 11 kB for a full cube);
``summary`` is what ``classify --json`` prints; ``flags_from_header`` reads the not-measured and
uncertain masks back.
"""
from __future__ import annotations

import base64

import numpy as np

from core.spectral.ood import OodResult, ood_for_model
from core.capture.quality import QualityReport, make_report, ood_check


def trust_of(quality: QualityReport | None, info, cube, *, not_measured=None) -> tuple[QualityReport, OodResult]:
    """The capture's quality report with the out-of-distribution check added, and the OOD outcome
    (of the classified pixels: ``not_measured``, bool (H, W), are left out)."""
    ood = ood_for_model(info, cube, not_measured=not_measured)
    report = quality if quality is not None else make_report(())
    return report.with_check(ood_check(ood)), ood


# (result attribute, summary key) of the flag layers' shares; masks travel as ``<attribute>`` in the header
_FRACTIONS = (
    ("ood_fraction", "out_of_distribution_fraction"),
    ("masked_fraction", "masked_fraction"),
    ("uncertain_fraction", "uncertain_fraction"),
)
_MASKS = ("ood_mask", "masked_mask", "uncertain_mask")


def summary(result) -> dict:
    """``"quality"``, ``"out_of_distribution_fraction"``, ``"masked_fraction"`` (pixels not measured, so
    not classified) and ``"uncertain_fraction"`` for ``classify --json`` and the service (None when unknown)."""
    quality = getattr(result, "quality", None)
    out: dict = {"quality": None if quality is None else quality.to_dict()}
    for attribute, key in _FRACTIONS:
        fraction = getattr(result, attribute, None)
        out[key] = None if fraction is None else round(float(fraction), 6)
    return out


def to_header(result) -> dict:
    """JSON-ready trust facts of a result for the service's answer header (masks bit-packed, base64)."""
    out = summary(result)
    for name in _MASKS:
        mask = getattr(result, name, None)
        out[name] = None if mask is None else base64.b64encode(np.packbits(np.asarray(mask, bool))).decode("ascii")
    return out


def flags_from_header(header: dict, shape: tuple[int, int]) -> dict:
    """``masked_mask`` / ``masked_fraction`` / ``uncertain_mask`` / ``uncertain_fraction`` from a result
    header (None where absent: an older service); ``ValueError`` when malformed."""
    out: dict = {}
    for prefix in ("masked", "uncertain"):
        out[f"{prefix}_mask"] = _unpack(header, f"{prefix}_mask", shape)
        out[f"{prefix}_fraction"] = _fraction(header, f"{prefix}_fraction")
    return out


def _fraction(header: dict, key: str) -> float | None:
    fraction = header.get(key)
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1):
        raise ValueError(f"result header {key} must be in 0..1, got {fraction!r}")
    return None if fraction is None else float(fraction)


def _unpack(header: dict, key: str, shape: tuple[int, int]) -> np.ndarray | None:
    packed = header.get(key)
    if packed is None:
        return None
    try:
        bits = np.frombuffer(base64.b64decode(packed, validate=True), np.uint8)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"result header {key} is not base64 ({exc})") from None
    n = shape[0] * shape[1]
    if bits.size != (n + 7) // 8:
        raise ValueError(f"result header {key} has {bits.size} bytes, expected {(n + 7) // 8}")
    return np.unpackbits(bits, count=n).astype(bool).reshape(shape)


def from_header(header: dict, shape: tuple[int, int]) -> tuple[QualityReport | None, np.ndarray | None, float | None]:
    """``(quality, ood_mask bool (H, W) or None, fraction)`` from a result header; ``ValueError`` when malformed."""
    quality = header.get("quality")
    report = None
    if quality is not None:
        if not isinstance(quality, dict):
            raise ValueError("result header 'quality' must be an object")
        try:
            report = QualityReport.from_dict(quality)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"result header 'quality' is malformed ({exc})") from None
    fraction = header.get("out_of_distribution_fraction")
    if fraction is not None and (not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1):
        raise ValueError(f"result header out_of_distribution_fraction must be in 0..1, got {fraction!r}")
    mask = _unpack(header, "ood_mask", shape)
    return report, mask, None if fraction is None else float(fraction)
