"""Safe rollout (remote.rollout, ``neurohsi cloud deploy``): entities validated offline by azure-ai-ml,
traffic at each step, rollback on a failed smoke request.

No Azure here: ``Rollout`` talks to a stand-in for ``MLClient`` that keeps the endpoint and deployment
entities (loaded from packaging/scoring/ with the SDK) and records each call; the smoke request runs
against the real scoring service on 127.0.0.1.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from remote.rollout import MAX_MIRROR_PERCENT, Rollout, RolloutError, second_deployment, traffic_after

ROOT = Path(__file__).resolve().parents[2]
SCORING = ROOT / "packaging" / "scoring"

pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"
)


def _live(kind: str = "managed"):
    from azure.ai.ml import load_online_deployment

    return load_online_deployment(SCORING / f"deployment-{kind}.yml")


@pytest.mark.parametrize(("kind", "entity"), [("managed", "ManagedOnlineDeployment"),
                                              ("kubernetes", "KubernetesOnlineDeployment")])
def test_second_deployment_copies_the_live_one_with_the_new_model(kind, entity):
    live = _live(kind)
    new = second_deployment(live, name="green", model="neurohsi-conv2dnet:2")
    assert type(new).__name__ == entity
    assert (new.name, new.model) == ("green", "neurohsi-conv2dnet:2")
    assert new.endpoint_name == live.endpoint_name and new.instance_type == live.instance_type
    assert new.environment_variables == live.environment_variables  # telemetry switches included
    assert new.request_settings.request_timeout_ms == live.request_settings.request_timeout_ms


@pytest.mark.parametrize(("name", "model", "message"), [
    ("9x", "m:1", "start with a letter"),
    ("blue", "m:1", "its own name"),
    ("green", "no-version", "NAME:VERSION"),
])
def test_second_deployment_refuses_bad_names(name, model, message):
    with pytest.raises(RolloutError, match=message):
        second_deployment(_live(), name=name, model=model)


def test_traffic_at_each_step():
    assert traffic_after("mirror", live="blue", new="green", percent=10) == ({"blue": 100, "green": 0}, {"green": 10})
    assert traffic_after("split", live="blue", new="green", percent=10) == ({"blue": 90, "green": 10}, {})
    assert traffic_after("promote", live="blue", new="green") == ({"blue": 0, "green": 100}, {})
    assert traffic_after("rollback", live="blue", new="green") == ({"blue": 100, "green": 0}, {})
    with pytest.raises(RolloutError, match="at most|1-50"):
        traffic_after("mirror", live="blue", new="green", percent=MAX_MIRROR_PERCENT + 1)
    for bad in (0, 100):
        with pytest.raises(RolloutError, match="split percent"):
            traffic_after("split", live="blue", new="green", percent=bad)


class FakeMLClient:
    """``online_deployments`` / ``online_endpoints`` get and begin_create_or_update(...).result(), recorded."""

    def __init__(self):
        from azure.ai.ml import load_online_endpoint

        self.endpoint = load_online_endpoint(SCORING / "endpoint-managed.yml")
        self.endpoint.traffic = {"blue": 100}
        # set by Azure when the endpoint exists (read-only in the SDK)
        self.endpoint._scoring_uri = "https://neurohsi-scoring.westeurope.inference.ml.azure.com/score"
        self.deployments = {"blue": _live()}
        self.calls = []
        owner = self

        def done(value):
            return SimpleNamespace(result=lambda: value)

        class Deployments:
            def get(self, name, endpoint_name):
                owner.calls.append(("get deployment", name))
                return owner.deployments[name]

            def begin_create_or_update(self, deployment):
                owner.calls.append(("create deployment", deployment.name, deployment.model))
                owner.deployments[deployment.name] = deployment
                return done(deployment)

        class Endpoints:
            def get(self, name):
                return owner.endpoint

            def begin_create_or_update(self, endpoint):
                owner.calls.append(("update endpoint", dict(endpoint.traffic), dict(endpoint.mirror_traffic or {})))
                return done(endpoint)

        self.online_deployments, self.online_endpoints = Deployments(), Endpoints()


def test_rollout_steps_change_what_azure_is_asked_for():
    client = FakeMLClient()
    rollout = Rollout(client, "neurohsi-scoring", live="blue", new="green")
    assert rollout.create("neurohsi-conv2dnet:2")["model"] == "neurohsi-conv2dnet:2"
    rollout.shift("mirror", 10)
    rollout.shift("split", 20)
    rollout.shift("promote")
    assert client.calls == [
        ("get deployment", "blue"),
        ("create deployment", "green", "neurohsi-conv2dnet:2"),
        ("update endpoint", {"blue": 100, "green": 0}, {"green": 10}),
        ("update endpoint", {"blue": 80, "green": 20}, {}),
        ("update endpoint", {"blue": 0, "green": 100}, {}),
    ]


def test_a_failed_smoke_request_rolls_back():
    client = FakeMLClient()
    rollout = Rollout(client, "neurohsi-scoring", live="blue", new="green")
    seen = []

    def request(url, deployment):
        seen.append((url, deployment))
        raise ConnectionError("HTTP 502 from green")

    with pytest.raises(RolloutError, match="smoke request to 'green' failed, rolled back"):
        rollout.smoke(request)
    assert seen == [(client.endpoint.scoring_uri, "green")]
    assert client.calls[-1] == ("update endpoint", {"blue": 100, "green": 0}, {})


def test_smoke_request_classifies_on_the_named_deployment(tmp_path):
    from app.cli.deploy_commands import _smoke_request
    from core.capture.synthetic.captures import generate_capture, small_profile
    from remote.cloud_config import CloudConfig
    from remote.scoring_server import local_scoring_server
    from tests.support.scoring import profile_id_of, save_random_model

    capture = generate_capture(seed=0, patient="ID99", profile=small_profile(12, 16))
    model = tmp_path / "green.safetensors"
    save_random_model(model, profile_id=profile_id_of(capture), seed=3, name="green-model")
    with local_scoring_server(model, key="smoke-key-123") as url:
        answer = _smoke_request(CloudConfig(), "smoke-key-123")(url, "green")
    assert answer["model"]["name"] == "green-model"
    assert answer["map_shape"] == list(capture.labels.shape)
