"""The one remote-or-local call: its policy, the fallback with a reason, and none without fallback_local."""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from core.model.inference import classify_prepared, prepare
from core.model.files import load_model
from remote.remote_or_local import (
    Outcome,
    RemotePolicy,
    RemoteTarget,
    classify_remote_or_local,
    drop_clients,
)
from remote.scoring_client import RemoteError
from tests.support.scoring import profile_id_of, save_random_model, small_capture
from tests.support.stage_timing import sequential_s


@pytest.fixture(scope="module")
def capture():
    return small_capture(2)


@pytest.fixture(scope="module")
def model(tmp_path_factory, capture):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    save_random_model(path, profile_id=profile_id_of(capture), seed=4)
    return load_model(path)


@pytest.fixture(autouse=True)
def _fresh_clients():
    drop_clients()
    yield
    drop_clients()


def _refused_url() -> str:
    with socket.socket() as sock:  # a free loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/score"


def _no_model():
    raise AssertionError("the local model must not be loaded")


def test_policy_is_validated():
    for bad in ({"retries": -1}, {"timeout_s": (0.0, 1.0)}, {"deadline_s": 0}):
        with pytest.raises(ValueError):
            RemotePolicy(**bad)


def test_without_endpoint_classifies_locally_with_no_reason(capture, model):
    prepared = prepare(capture)
    outcome = classify_remote_or_local(prepared, model_resolver=lambda: model, endpoint=None, fallback_local=False)
    assert isinstance(outcome, Outcome) and outcome.fallback_reason is None
    assert outcome.result.source == "local"
    np.testing.assert_array_equal(outcome.result.labels, classify_prepared(prepared, model).labels)


def test_refused_endpoint_falls_back_with_the_reason(capture, model):
    url = _refused_url()
    outcome = classify_remote_or_local(
        capture, model_resolver=lambda: model, endpoint=RemoteTarget(url), fallback_local=True
    )
    assert outcome.result.source == "local"
    assert outcome.fallback_reason is not None and "cannot reach" in outcome.fallback_reason
    assert url.split("/score")[0] in outcome.fallback_reason
    np.testing.assert_array_equal(outcome.result.labels, classify_prepared(prepare(capture), model).labels)


def test_no_fallback_without_fallback_local(capture):
    url = _refused_url()
    with pytest.raises(RemoteError, match="cannot reach"):
        classify_remote_or_local(capture, model_resolver=_no_model, endpoint=RemoteTarget(url), fallback_local=False)


def test_bad_settings_are_raised_not_fallen_back_from(capture, model):
    with pytest.raises(ValueError, match="plain http"):
        classify_remote_or_local(
            capture, model_resolver=model, endpoint=RemoteTarget("http://example.org/score", key="k"), fallback_local=True
        )


def test_deadline_bounds_the_wait_and_total_is_wall_clock(capture, model):
    """An endpoint that accepts and never answers: the deadline ends the wait, the map is local,
    and "total" counts the wait (a sum of stages would not)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nobody ever answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/score"
        policy = RemotePolicy(retries=0, timeout_s=(2.0, 30.0), deadline_s=0.6)
        prepared = prepare(capture)
        start = time.perf_counter()
        outcome = classify_remote_or_local(
            prepared, model_resolver=lambda: model, endpoint=RemoteTarget(url), fallback_local=True, policy=policy
        )
        outside = time.perf_counter() - start
    assert "within the 0.6 s deadline" in outcome.fallback_reason
    assert 0.6 <= outcome.waited_s <= outside
    timings = outcome.result.timings_s
    assert timings["total"] >= prepared.timings_s["total"] + 0.6
    assert timings["total"] >= sequential_s(timings) + 0.5


@pytest.mark.slow
def test_remote_success_needs_no_model_and_sends_references_once(tmp_path, capture, model):
    from remote.scoring_server import local_scoring_server

    local = classify_prepared(prepare(capture), model)
    with local_scoring_server(model.path) as url:
        first = classify_remote_or_local(capture, model_resolver=_no_model, endpoint=RemoteTarget(url), fallback_local=False)
        second = classify_remote_or_local(
            prepare(capture), model_resolver=_no_model, endpoint=RemoteTarget(url), fallback_local=True
        )
    for outcome in (first, second):
        assert outcome.fallback_reason is None and outcome.result.source == url
        np.testing.assert_array_equal(outcome.result.labels, local.labels)
    # The pooled client remembered the references: the second request carried only the raw frame.
    from remote import remote_or_local

    (client,) = [c for idle in remote_or_local._pool.values() for c in idle]
    assert client.last_exchange["references_sent"] == []


def test_the_policy_and_deployment_reach_the_client():
    from remote.remote_or_local import _take_client

    policy = RemotePolicy(retries=2, timeout_s=(1.5, 7.0), deadline_s=9.0)
    _key, client = _take_client(RemoteTarget(_refused_url(), deployment="blue"), policy)
    try:
        assert (client.retries, client.timeout, client.deadline_s, client.deployment) == (2, (1.5, 7.0), 9.0, "blue")
    finally:
        client.close()
    with pytest.raises(ValueError, match="deployment name"):
        _take_client(RemoteTarget(_refused_url(), deployment="not a name!"), policy)
