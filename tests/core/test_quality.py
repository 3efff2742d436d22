"""Capture quality checks on synthetic captures with real-structure frames and metadata."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.capture.files import load_capture
from core.capture.metadata import CaptureMetadata
from core.capture.quality import QualityReport, assess_quality
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.ximea import write_real_frame


@pytest.fixture(scope="module")
def good():
    return generate_capture(seed=2, profile=small_profile(40, 60)).to_capture()


def codes(report, severity):
    return {c.code for c in report.checks if c.severity == severity}


def test_a_good_capture_is_ok(good):
    report = assess_quality(good)
    assert report.status == "ok" and report.usable and report.reason == "capture quality ok"
    assert {"saturated", "underexposed", "white_not_above_dark", "raw_matches_white", "raw_matches_dark"} <= codes(report, "ok")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda c: replace(c, raw=np.full_like(c.raw, 1023)), "saturated"),  # 10-bit full scale
        (lambda c: replace(c, raw=c.dark.copy()), "raw_matches_dark"),  # a black frame
        (lambda c: replace(c, raw=c.dark.copy()), "underexposed"),
        (lambda c: replace(c, dark=c.white, white=c.dark), "white_not_above_dark"),  # swapped references
        (lambda c: replace(c, raw=c.white.copy()), "raw_matches_white"),
        (lambda c: replace(c, raw=(c.raw // 4).astype(np.uint8)), "bit_depth_mismatch"),
    ],
)
def test_broken_captures_are_unusable(good, change, code):
    report = assess_quality(change(good))
    assert report.status == "unusable" and not report.usable
    assert code in codes(report, "unusable")
    assert report.reason != "capture quality ok"


def test_partly_saturated_is_a_warning_with_its_fraction(good):
    raw = good.raw.copy()
    raw[: raw.shape[0] // 10] = 1023  # the top 10 % of rows
    report = assess_quality(replace(good, raw=raw))
    assert report.status == "warning"
    (check,) = [c for c in report.checks if c.code == "saturated"]
    assert check.severity == "warning" and check.fraction == pytest.approx(0.1, abs=0.02)


def test_references_with_other_metadata_are_flagged(tmp_path, good):
    for name, frame, kwargs in (
        ("raw", good.raw, {}),
        ("dark", good.dark, {"exposure_us": 20000}),
        ("white", good.white, {"serial": "OTHER123"}),
    ):
        write_real_frame(tmp_path / f"{name}.tif", frame, active_wh=(frame.shape[1], frame.shape[0]), **kwargs)
    report = assess_quality(load_capture(tmp_path / "raw.tif"))
    (check,) = [c for c in report.checks if c.code == "reference_metadata"]
    assert check.severity == "warning" and "dark exposure 20000" in check.message and "white serial OTHER123" in check.message
    assert report.status == "warning"


def test_metadata_bit_depth_differences_are_unusable(good):
    meta = lambda bits: CaptureMetadata(api_context=(("xiApiPar:SensorBitDepth", str(bits)),))  # noqa: E731
    capture = replace(good, metadata=meta(10), dark_metadata=meta(10), white_metadata=meta(12))
    assert "bit_depth_mismatch" in codes(assess_quality(capture), "unusable")


def test_report_round_trips_as_json_dict(good):
    report = assess_quality(replace(good, raw=np.full_like(good.raw, 1023)))
    assert QualityReport.from_dict(report.to_dict()) == report
    assert report.to_dict()["status"] == "unusable" and {"code", "severity", "message", "fraction"} <= set(report.to_dict()["checks"][1])


def test_unusable_capture_is_refused_unless_forced(good):
    from core.capture.quality import UnusableCaptureError, require_usable

    report = assess_quality(replace(good, raw=np.full_like(good.raw, 1023)))
    with pytest.raises(UnusableCaptureError, match=r"^ID0018C01: capture unusable, no map made: 100\.0 % of pixels saturated") as err:
        require_usable(report, name="ID0018C01")
    assert err.value.report is report and isinstance(err.value, ValueError)
    require_usable(report, force=True)  # forced: no error
    require_usable(assess_quality(good))  # usable: no error


def test_out_of_distribution_share_becomes_a_warning():
    from core.spectral.ood import OodResult
    from core.capture.quality import make_report, ood_check

    assert ood_check(OodResult(None, 0.05, True)).severity == "ok"
    high = ood_check(OodResult(None, 0.35, True))
    assert high.severity == "warning" and high.fraction == 0.35 and "35.0 %" in high.message
    unavailable = ood_check(OodResult(None, None, False))
    assert unavailable.fraction is None and "out-of-distribution check unavailable" in unavailable.message
    assert make_report([high]).status == "warning"
