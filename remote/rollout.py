"""Shipping a new model to an Azure ML managed online endpoint safely (``neurohsi cloud deploy``).

Azure ML's safe rollout ("Perform safe rollout of new deployments for real-time inference"),
step by step, each one a separate command so a person checks the endpoint between them:

1. ``create``: a second deployment (e.g. ``green``) copied from the live one (``blue``: same
   image, instance type and count, probes, request settings, environment variables) with the
   new model, at 0 % traffic;
2. ``smoke``: one request routed to it with the ``azureml-model-deployment`` header (a
   service-info request and a small synthetic capture; the answer must name the new model);
3. ``mirror``: a copy of N % of live requests also goes to it (answers discarded; Azure
   allows at most 50 %), to compare latency and errors under real load;
4. ``split``: N % of the traffic is answered by it, the rest by the live one;
5. ``promote``: 100 % to it, mirroring off (the old deployment stays until deleted by hand);
   ``rollback``: 100 % back to the live one, mirroring off, at any step.

The entities are built by pure functions (:func:`second_deployment`, :func:`traffic_after`)
and validated offline with azure-ai-ml's own schema; :class:`Rollout` is a thin layer of
``MLClient`` calls that needs a real workspace (never run against Azure here: docs/deploy.md).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

from core.errors import NeuroHSIError

STEPS = ("create", "smoke", "mirror", "split", "promote", "rollback")
MAX_MIRROR_PERCENT = 50  # Azure ML: mirrored traffic may not exceed 50 %
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{2,31}$")  # Azure: a letter first, 3-32 letters, digits, '-'
_MODEL = re.compile(r"^(azureml:)?[A-Za-z0-9_.\-]{1,255}:[A-Za-z0-9_.\-]{1,64}$")


class RolloutError(NeuroHSIError, RuntimeError):
    """A rollout step cannot be done (bad name or percentage, failed smoke request, Azure error)."""


def check_name(name: str, what: str = "deployment") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RolloutError(f"{what} name must start with a letter and be 3-32 letters, digits or '-' "
                           f"(Azure's rule), got {name!r}")
    return name


def second_deployment(live, *, name: str, model: str):
    """A copy of deployment entity ``live`` named ``name`` serving registered model ``model``
    (``NAME:VERSION``); everything else as the live one. Validated with the SDK's schema."""
    from azure.ai.ml import load_online_deployment

    check_name(name)
    if not isinstance(model, str) or not _MODEL.match(model):
        raise RolloutError(f"model must be a registered model NAME:VERSION, got {model!r}")
    if name == live.name:
        raise RolloutError(f"the new deployment needs its own name (the live one is {live.name!r})")
    data = json.loads(json.dumps(live._to_dict()))  # OrderedDicts to plain types
    data.update(name=name, model=model if model.startswith("azureml:") else f"azureml:{model}")
    for key in ("provisioning_state", "id", "scoring_uri"):
        data.pop(key, None)
    try:  # the SDK's own loader is the validator: what it refuses, Azure would too
        import io

        import yaml

        return load_online_deployment(io.StringIO(yaml.safe_dump(data, sort_keys=False)))
    except Exception as exc:  # marshmallow.ValidationError and friends
        raise RolloutError(f"deployment {name!r} does not validate: {' '.join(str(exc).split())[:300]}") from None


def traffic_after(step: str, *, live: str, new: str, percent: int = 0) -> tuple[dict, dict]:
    """``(traffic, mirror_traffic)`` of the endpoint after ``step`` (``mirror`` and ``split`` take ``percent``)."""
    check_name(live)
    check_name(new)
    if live == new:
        raise RolloutError("the live and the new deployment must differ")
    if step == "mirror":
        if not 1 <= percent <= MAX_MIRROR_PERCENT:
            raise RolloutError(f"mirror percent must be 1-{MAX_MIRROR_PERCENT} (Azure's limit), got {percent}")
        return {live: 100, new: 0}, {new: percent}
    if step == "split":
        if not 1 <= percent <= 99:
            raise RolloutError(f"split percent must be 1-99 (0 is a rollback, 100 a promotion), got {percent}")
        return {live: 100 - percent, new: percent}, {}
    if step == "promote":
        return {live: 0, new: 100}, {}
    if step == "rollback":
        return {live: 100, new: 0}, {}
    raise RolloutError(f"no traffic change for step {step!r}")


class Rollout:
    """The steps on endpoint ``endpoint`` of workspace client ``ml_client`` (``azure.ai.ml.MLClient``)."""

    def __init__(self, ml_client, endpoint: str, *, live: str, new: str) -> None:
        self.client, self.endpoint = ml_client, check_name(endpoint, "endpoint")
        self.live, self.new = check_name(live), check_name(new)

    def _call(self, doing: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RolloutError:
            raise
        except Exception as exc:  # SDK errors: one redacted line
            from core.redaction import redact

            raise RolloutError(f"{doing} failed: {redact(' '.join(str(exc).split())[:300])}") from None

    def create(self, model: str) -> dict:
        """Step 1: the new deployment at 0 % (waits until Azure has provisioned it)."""
        live = self._call("reading the live deployment", self.client.online_deployments.get,
                          name=self.live, endpoint_name=self.endpoint)
        deployment = second_deployment(live, name=self.new, model=model)
        self._call("creating the deployment", lambda: self.client.online_deployments.begin_create_or_update(
            deployment).result())
        return {"step": "create", "deployment": self.new, "model": deployment.model, "traffic": "0 %"}

    def smoke(self, request: Callable[[str, str], dict]) -> dict:
        """Step 2: ``request(scoring_uri, deployment)`` must return the service info of the new model;
        on failure the endpoint is rolled back (no traffic ever reached the new deployment)."""
        endpoint = self._call("reading the endpoint", self.client.online_endpoints.get, name=self.endpoint)
        try:
            answer = request(endpoint.scoring_uri, self.new)
        except Exception as exc:
            self.rollback()
            raise RolloutError(f"smoke request to {self.new!r} failed, rolled back: "
                               f"{' '.join(str(exc).split())[:300]}") from None
        return {"step": "smoke", "deployment": self.new, "answer": answer}

    def shift(self, step: str, percent: int = 0) -> dict:
        """Steps 3-5 and rollback: set the endpoint's traffic and mirror traffic."""
        traffic, mirror = traffic_after(step, live=self.live, new=self.new, percent=percent)
        endpoint = self._call("reading the endpoint", self.client.online_endpoints.get, name=self.endpoint)
        endpoint.traffic, endpoint.mirror_traffic = traffic, mirror
        self._call(f"{step} ({traffic}, mirror {mirror})",
                   lambda: self.client.online_endpoints.begin_create_or_update(endpoint).result())
        return {"step": step, "traffic": traffic, "mirror_traffic": mirror}

    def rollback(self) -> dict:
        return self.shift("rollback")
