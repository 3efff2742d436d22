"""The trust facts of one classification in one place: quality report, out-of-distribution mask.

``trust_of(prepared_quality, model_info, cube)`` is what ``core.model.inference.classify_prepared``
attaches to a result; ``to_header`` / ``from_header`` carry the same facts through the
scoring service's JSON result header (the mask bit-packed, about 11 kB for a full cube);
``summary`` is what ``classify --json`` prints.
"""
from __future__ import annotations

import base64

import numpy as np

from core.spectral.ood import OodResult, ood_for_model
from core.capture.quality import QualityReport, make_report, ood_check


def trust_of(quality: QualityReport | None, info, cube) -> tuple[QualityReport, OodResult]:
    """The capture's quality report with the out-of-distribution check added, and the OOD outcome."""
    ood = ood_for_model(info, cube)
    report = quality if quality is not None else make_report(())
    return report.with_check(ood_check(ood)), ood


def summary(result) -> dict:
    """``"quality"`` and ``"out_of_distribution_fraction"`` for ``classify --json`` (None when unknown)."""
    quality = getattr(result, "quality", None)
    fraction = getattr(result, "ood_fraction", None)
    return {
        "quality": None if quality is None else quality.to_dict(),
        "out_of_distribution_fraction": None if fraction is None else round(float(fraction), 6),
    }


def to_header(result) -> dict:
    """JSON-ready trust facts of a result for the service's answer header."""
    out = summary(result)
    mask = getattr(result, "ood_mask", None)
    out["ood_mask"] = None if mask is None else base64.b64encode(np.packbits(np.asarray(mask, bool))).decode("ascii")
    return out


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
    mask = None
    packed = header.get("ood_mask")
    if packed is not None:
        try:
            bits = np.frombuffer(base64.b64decode(packed, validate=True), np.uint8)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"result header ood_mask is not base64 ({exc})") from None
        n = shape[0] * shape[1]
        if bits.size != (n + 7) // 8:
            raise ValueError(f"result header ood_mask has {bits.size} bytes, expected {(n + 7) // 8}")
        mask = np.unpackbits(bits, count=n).astype(bool).reshape(shape)
    return report, mask, None if fraction is None else float(fraction)
