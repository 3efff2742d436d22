"""Live mode with an endpoint: only the raw frame travels after the first capture; fallback is per capture."""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from core.capture.files import frame_to_bytes
from core.capture.source import WatchedFolder
from core.model.inference import classify
from core.model.live import LivePipeline
from core.model.files import load_model
from remote import remote_or_local
from remote.remote_or_local import RemoteTarget, classify_remote_or_local, drop_clients
from tests.support.live_writer import write_whole
from tests.support.scoring import profile_id_of, save_random_model, small_capture


@pytest.fixture(scope="module")
def capture():
    return small_capture(5)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, capture):
    path = tmp_path_factory.mktemp("live-remote") / "m.safetensors"
    save_random_model(path, profile_id=profile_id_of(capture), seed=2)
    return path


@pytest.fixture
def folder(tmp_path, capture):
    write_whole(tmp_path / "ID0001CD01.tif", frame_to_bytes(capture.dark, capture.metadata))
    write_whole(tmp_path / "ID0001CW01.tif", frame_to_bytes(capture.white, capture.metadata))
    drop_clients()
    yield tmp_path
    drop_clients()


def _run(folder, capture, target, model, *, fallback: bool, n: int = 2):
    results, errors = [], []

    def classify_fn(prepared):
        outcome = classify_remote_or_local(prepared, model_resolver=lambda: model, endpoint=target, fallback_local=fallback)
        return outcome.result, outcome.fallback_reason

    exchanges = []
    with LivePipeline(WatchedFolder(folder), classify_fn, on_result=results.append,
                      on_error=lambda cid, exc: errors.append(exc)):
        for k in range(n):
            write_whole(folder / f"ID0001C{k + 2:02d}.tif", frame_to_bytes(capture.raw, capture.metadata))
            deadline = time.monotonic() + 60
            while len(results) + len(errors) < k + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            clients = [c for idle in remote_or_local._pool.values() for c in idle]
            exchanges.append(dict(clients[0].last_exchange) if clients else None)
    return results, errors, exchanges


def test_refused_endpoint_falls_back_per_capture_or_reports_each(folder, capture, model_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/score"
    model = load_model(model_path)
    results, errors, _ = _run(folder, capture, RemoteTarget(url), model, fallback=True)
    assert not errors and len(results) == 2
    for live in results:
        assert live.result.source == "local" and "cannot reach" in live.fallback_reason
    results, errors, _ = _run(folder, capture, RemoteTarget(url), model, fallback=False, n=1)
    assert results == [] and len(errors) == 1 and "cannot reach" in str(errors[0])


@pytest.mark.slow
def test_live_remote_sends_only_the_raw_frame_after_the_first(folder, capture, model_path):
    from remote.scoring_server import local_scoring_server

    model = load_model(model_path)
    with local_scoring_server(model_path) as url:
        results, errors, exchanges = _run(folder, capture, RemoteTarget(url), model, fallback=False)
    assert not errors and [r.result.source for r in results] == [url, url]
    assert sorted(exchanges[0]["references_sent"]) == ["dark", "white"]
    assert exchanges[1]["references_sent"] == []
    np.testing.assert_array_equal(results[1].result.labels, classify(capture, model).labels)
    (client,) = [c for idle in remote_or_local._pool.values() for c in idle]
    assert len(client._encoded_pairs) == 1  # one in-memory pair: encoded and hashed once, not per capture


def test_live_classifier_runs_two_local_captures_at_once_and_remote_ones_one_at_a_time(model_path, monkeypatch):
    """The watch command and the GUI get both cores for a local model; an endpoint client is not shared."""
    import core.model.live as live_module
    from remote.remote_or_local import RemotePolicy, live_classifier

    monkeypatch.setattr(live_module, "usable_cores", lambda: 2)
    local = live_classifier(lambda: load_model(model_path), endpoint=None, fallback_local=False, policy=RemotePolicy())
    assert local.workers == 2
    target = RemoteTarget("http://127.0.0.1:9/score", None)
    remote = live_classifier(lambda: load_model(model_path), endpoint=target, fallback_local=True, policy=RemotePolicy())
    assert getattr(remote, "workers", 1) == 1
