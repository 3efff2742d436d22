"""ScoringClient behind an emulated Azure ML managed-endpoint front end, against the real scoring service.

The front end (``tests/support/scoring_frontend.py``) turns every non-200 answer of the
container into 424 + ``ms-azureml-model-error-statuscode`` and injects its own 429
(``Retry-After``), 408 and dropped connections; the service behind it is the real
``azureml-inference-server-http`` on 127.0.0.1.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.model.inference import classify
from core.model.files import load_model
from remote.scoring_client import RemoteError, ScoringClient
from remote.remote_or_local import RemoteTarget, classify_remote_or_local, drop_clients
from remote.scoring_server import local_scoring_server
from tests.support.scoring import profile_id_of, save_random_model, small_capture
from tests.support.scoring_frontend import ManagedEndpointFrontEnd

KEY = "frontend-test-key-42"


@pytest.fixture(scope="module")
def captures():
    return [small_capture(seed) for seed in range(3)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, captures):
    path = tmp_path_factory.mktemp("model") / "frontend.safetensors"
    save_random_model(path, profile_id=profile_id_of(captures[0]), seed=5)
    return path


@pytest.fixture(scope="module")
def expected(model_path, captures):
    model = load_model(model_path)
    return [classify(c, model).labels for c in captures]


@pytest.fixture(scope="module")
def service(model_path):
    # The service keeps 2 references: one capture's dark and white.
    with local_scoring_server(model_path, key=KEY, env={"NEUROHSI_REFERENCE_CACHE": "2"}) as url:
        yield url


@pytest.fixture(params=[True, False], ids=["body-kept", "body-replaced"])
def frontend(service, request):
    with ManagedEndpointFrontEnd(service, keep_body=request.param) as proxy:
        yield proxy


def test_reference_recovery_works_behind_424(frontend, captures, expected):
    client = ScoringClient(frontend.url, key=KEY, backoff_s=0.01)
    client.classify_capture(captures[0])
    # Another client's references evict ours: the container answers 409, the front end 424.
    ScoringClient(frontend.url, key=KEY).classify_capture(captures[1])
    result = client.classify_capture(captures[0])
    np.testing.assert_array_equal(result.labels, expected[0])
    assert client.last_exchange["http_requests"] == 2
    assert client.last_exchange["references_sent"] == ["dark", "white"]
    assert frontend.statuses()[-2:] == [424, 200]
    assert frontend.log[-2]["fault"] is None


def test_429_with_retry_after_is_waited_out(frontend, captures, expected):
    frontend.retry_after_s = 1
    frontend.inject("429")
    client = ScoringClient(frontend.url, key=KEY, backoff_s=0.01)
    start = time.monotonic()
    result = client.classify_capture(captures[2])
    assert time.monotonic() - start >= 1.0  # Retry-After: 1 honoured, not the 0.01 s backoff
    np.testing.assert_array_equal(result.labels, expected[2])
    assert frontend.statuses()[-2:] == [429, 200]


def test_408_and_dropped_connection_are_retried(frontend, captures, expected):
    frontend.inject("408", "drop_mid_body")
    client = ScoringClient(frontend.url, key=KEY, backoff_s=0.01, retries=3)
    result = client.classify_capture(captures[1])
    np.testing.assert_array_equal(result.labels, expected[1])
    assert frontend.statuses()[-3:] == [408, "dropped", 200]


def test_rejection_behind_424_reports_the_container_code(frontend):
    client = ScoringClient(frontend.url, key="wrong-key", backoff_s=0.01)
    with pytest.raises(RemoteError, match=r"endpoint key rejected \(HTTP 401\)") as info:
        client.ping()
    assert info.value.status == 401
    assert frontend.statuses() == [424]  # a 4xx behind 424 is not retried


def test_three_429s_in_a_row_do_not_fail_a_classify(frontend, captures, expected, model_path):
    # Issue 24: a managed endpoint's front end may answer 429 (Retry-After: 1) several times in a
    # row; the shared policy (one RemotePolicy for CLI, GUI and live mode) retries until its deadline.
    frontend.retry_after_s = 1
    frontend.inject("429", "429", "429")
    try:
        outcome = classify_remote_or_local(
            captures[2], model_resolver=lambda: pytest.fail("must not fall back"),
            endpoint=RemoteTarget(frontend.url, key=KEY), fallback_local=False,
        )
    finally:
        drop_clients()
    assert outcome.fallback_reason is None
    np.testing.assert_array_equal(outcome.result.labels, expected[2])
    assert frontend.statuses()[-4:] == [429, 429, 429, 200]
    assert outcome.waited_s >= 3.0  # each Retry-After: 1 honoured


def test_retries_stop_at_the_budget_without_a_deadline(frontend):
    frontend.inject("429", "429", "429", "429")
    frontend.retry_after_s = 0
    client = ScoringClient(frontend.url, key=KEY, backoff_s=0.01, retries=2, deadline_s=None)
    with pytest.raises(RemoteError, match=r"HTTP 429") as info:
        client.ping()
    assert info.value.status == 429
    assert frontend.statuses() == [429, 429, 429]


def test_deadline_bounds_a_trickling_answer(frontend, captures):
    frontend.inject("trickle")
    frontend.trickle_s = 0.5
    client = ScoringClient(frontend.url, key=KEY, deadline_s=2.0, timeout=(5.0, 60.0))
    start = time.monotonic()
    with pytest.raises(RemoteError, match=r"within the 2 s deadline") as info:
        client.classify_capture(captures[0])
    assert time.monotonic() - start < 30  # not the 60 s read timeout, let alone the whole trickle
    assert info.value.deadline is True


def test_retry_after_past_the_deadline_gives_up_at_once(frontend, captures):
    frontend.retry_after_s = 30
    frontend.inject("429")
    client = ScoringClient(frontend.url, key=KEY, deadline_s=3.0)
    before = len(frontend.statuses())
    with pytest.raises(RemoteError, match=r"HTTP 429.*asked to retry after 30 s \(Retry-After\), past the 3 s deadline"):
        client.classify_capture(captures[0])
    # At once, not at the deadline: the message names the Retry-After, which only the early stop says.
    assert frontend.statuses()[before:] == [429]


def test_deployment_header_is_sent(frontend):
    ScoringClient(frontend.url, key=KEY, deployment="blue-2").ping()
    ScoringClient(frontend.url, key=KEY).ping()
    assert frontend.log[0]["headers"].get("azureml-model-deployment") == "blue-2"
    assert "azureml-model-deployment" not in frontend.log[1]["headers"]
    with pytest.raises(ValueError, match="deployment name"):
        ScoringClient(frontend.url, deployment="blue green")


@pytest.mark.parametrize("name", ["1", "9x", "ab", "-blue", "blue_green", "a" * 33])
def test_deployment_names_follow_azures_rule(name):
    # Azure ML: a deployment name starts with a letter and has 3-32 letters, digits or '-'.
    with pytest.raises(ValueError, match="start with a letter and be 3-32"):
        ScoringClient("http://127.0.0.1:9/score", deployment=name)
    assert ScoringClient("http://127.0.0.1:9/score", deployment="b" + "1" * 31).deployment == "b" + "1" * 31


def test_remote_or_local_routes_to_the_deployment_and_falls_back_at_the_deadline(frontend, captures, model_path):
    from remote.remote_or_local import RemotePolicy, RemoteTarget, classify_remote_or_local, drop_clients

    frontend.inject("trickle")
    frontend.trickle_s = 0.5
    try:
        outcome = classify_remote_or_local(
            captures[0], model_resolver=load_model(model_path), endpoint=RemoteTarget(frontend.url, KEY, "green"),
            fallback_local=True, policy=RemotePolicy(deadline_s=2.0),
        )
    finally:
        drop_clients()
    assert outcome.fallback_reason is not None and "2 s" in outcome.fallback_reason
    assert outcome.result.source == "local"
    assert outcome.waited_s < 5
    assert frontend.log[0]["headers"].get("azureml-model-deployment") == "green"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint", "http://127.0.0.1:9/score", "--deadline", "0"], "--deadline must be a positive number of seconds"),
        (["--deployment", "blue"], "--deployment needs --endpoint"),
        (["--endpoint", "http://127.0.0.1:9/score", "--deployment", "blue green"], "deployment name"),
        (["--endpoint-auth", "entra"], "--endpoint-auth entra needs --endpoint"),
    ],
)
def test_classify_deadline_and_deployment_flags_give_one_line(tmp_path, captures, args, message):
    import subprocess
    import sys

    from tests.support.scoring import write_capture

    raw = write_capture(tmp_path, captures[0])
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "classify", str(raw), *args],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
