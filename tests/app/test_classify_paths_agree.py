"""The GUI worker, the CLI and the scoring service make one capture's map through the same functions.

Each path is run for real (the worker's generators as the thread pool runs them, ``neurohsi
classify``, the service's binary-protocol handler) while the stages of ``core.model.inference`` are
recorded: every path must go through them exactly once and give the same labels.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

import core.model.inference
from app.cli.main import main
from app.workers import Classified, classify_job, open_capture_job
from core.capture.files import load_capture
from core.model.choice import resolve_model
from remote.scoring_protocol import ScoringParams, decode_result, encode_request
from tests.support.stage_timing import sequential_s


def _drive(job):
    """Run a worker generator to its return value, as superqt's GeneratorWorker does."""
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


@pytest.fixture
def stages(monkeypatch):
    """Count calls of the pipeline's stages, looked up in core.model.inference as every path must."""
    calls: dict[str, int] = {}
    for name in ("preprocess_capture", "synthetic_rgb", "predict_dense"):
        original = getattr(core.model.inference, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(core.model.inference, name, counted)
    return calls


def _service_result(model_path, raw_path, monkeypatch, stages=None):
    from remote import scoring_entry

    monkeypatch.setenv("NEUROHSI_MODEL_PATH", str(model_path))
    scoring_entry.init()
    if stages is not None:
        stages.clear()  # init() warms up with one classification of its own: count the request's only
    capture = load_capture(raw_path)
    from core.capture.files import frame_to_bytes

    raw, dark, white = (frame_to_bytes(f, capture.metadata) for f in (capture.raw, capture.dark, capture.white))
    params = ScoringParams(hashlib.sha256(dark).hexdigest(), hashlib.sha256(white).hexdigest())
    body, content_type = encode_request(raw, dark, white, params)
    response = scoring_entry._score_binary(scoring_entry._STATE, body, content_type, time.perf_counter())
    assert response.status_code == 200
    return decode_result(response.get_data())


def test_gui_worker_cli_and_service_give_identical_labels(small_files, tmp_path, stages, monkeypatch):
    raw, model_path = small_files

    prepared = _drive(open_capture_job(raw))
    classified = _drive(classify_job(prepared, model_resolver=lambda: resolve_model(model_path)))
    assert isinstance(classified, Classified) and classified.fallback is None
    assert stages == {"preprocess_capture": 1, "synthetic_rgb": 1, "predict_dense": 1}

    stages.clear()
    assert main(["classify", str(raw), "--model", str(model_path), "--npz", str(tmp_path / "cli.npz")]) == 0
    with np.load(tmp_path / "cli.npz") as npz:
        cli_labels, cli_probs = npz["labels"], npz["probabilities"]
    assert stages == {"preprocess_capture": 1, "synthetic_rgb": 1, "predict_dense": 1}

    stages.clear()
    service = _service_result(model_path, raw, monkeypatch, stages)
    assert stages == {"preprocess_capture": 1, "synthetic_rgb": 1, "predict_dense": 1}

    gui = classified.result
    assert gui.probabilities.std(axis=(0, 1)).min() > 1e-4  # probabilities vary over the scene: worth comparing
    np.testing.assert_array_equal(cli_labels, gui.labels)
    np.testing.assert_array_equal(cli_probs, gui.probabilities)
    np.testing.assert_array_equal(service.labels, gui.labels)
    np.testing.assert_allclose(service.probabilities, gui.probabilities, atol=2e-3)  # float16 on the wire


def test_gui_worker_timings_are_wall_clock(small_files):
    raw, model_path = small_files
    start = time.perf_counter()
    prepared = _drive(open_capture_job(raw))
    opened_s = time.perf_counter() - start
    assert set(prepared.timings_s) == {"read", "preprocess", "rgb", "quality", "total"}
    assert sequential_s(prepared.timings_s) <= prepared.timings_s["total"] <= opened_s
    start = time.perf_counter()
    result = _drive(classify_job(prepared, model_resolver=lambda: resolve_model(model_path))).result
    classify_s = time.perf_counter() - start
    # What the user waited: opening plus classifying, each measured around its call.
    assert prepared.timings_s["total"] + result.timings_s["infer"] <= result.timings_s["total"]
    assert result.timings_s["total"] <= opened_s + classify_s


def test_gui_worker_falls_back_with_a_notice_and_not_when_told_not_to(small_files):
    import socket

    from app.workers import FallbackNotice, RemoteTarget
    from remote.scoring_client import RemoteError

    raw, model_path = small_files
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/score"
    prepared = _drive(open_capture_job(raw))
    job = classify_job(prepared, model_resolver=lambda: resolve_model(model_path), remote=RemoteTarget(url))
    yielded = []
    try:
        while True:
            yielded.append(next(job))
    except StopIteration as stop:
        classified = stop.value
    notices = [y for y in yielded if isinstance(y, FallbackNotice)]
    assert notices == [classified.fallback] and notices[0].endpoint == url and "cannot reach" in notices[0].problem
    assert classified.result.source == "local"
    with pytest.raises(RemoteError):
        _drive(classify_job(prepared, model_resolver=lambda: resolve_model(model_path), remote=RemoteTarget(url),
                            fallback_local=False))
