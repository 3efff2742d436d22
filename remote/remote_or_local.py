"""Classify on a scoring endpoint, or locally: the one call and the one policy (CLI, GUI, live mode).

Policy (:class:`RemotePolicy`, the same for every caller):

- the endpoint is asked through :class:`remote.scoring_client.ScoringClient`: busy answers
  (408/429/502/503/504, also inside an Azure ML 424) are retried until the deadline,
  connection failures ``retries`` times (jittered backoff; ``Retry-After`` honoured, ignored
  when garbage or negative; one past the deadline ends the attempt at once, saying so),
  ``timeout_s = (connect, read)``
  per HTTP request, and the target's ``deployment`` as the ``azureml-model-deployment`` header;
- the whole remote attempt is bounded by ``deadline_s`` of wall clock: past it the
  caller stops waiting (the abandoned request finishes on a daemon thread and its
  answer is dropped) — in theatre a quick local map beats a long wait;
- on a remote failure (``RemoteError``, ``OSError``, the deadline) the capture is
  classified locally when ``fallback_local`` and the :class:`Outcome` says why;
  otherwise the ``RemoteError`` is raised. Bad settings (``ValueError``, e.g. a key
  over plain http) are raised, never fallen back from: they need fixing.

Clients are kept per (url, key, deployment, policy) and used by one thread at a
time, so dark/white references are sent once and afterwards only their sha256
goes with each raw frame (the live mode relies on it).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from core import defaults
from core.capture.files import Capture
from core.errors import one_line
from core.model.inference import ClassificationResult, Prepared, classify_prepared, prepare
from core.model.files import LoadedModel
from core.model.live import Classify, local_classifier
from remote.result_check import check_result, expected_cube_shape
from remote.scoring_client import RemoteError, ScoringClient


@dataclass(frozen=True)
class RemoteTarget:
    """A scoring endpoint: URL, optional key or Entra ID token auth, optional Azure ML deployment name."""

    url: str
    key: str | None = None
    deployment: str | None = None
    # remote.endpoint_auth.EntraTokenAuth for an aad_token endpoint (instead of a key); kept per target,
    # so its token is refreshed, not fetched again, from call to call.
    token_auth: object | None = None


@dataclass(frozen=True)
class RemotePolicy:
    """How long and how often to try the endpoint (see the module docstring)."""

    retries: int = 1  # connection failures; busy answers are retried until the deadline
    timeout_s: tuple[float, float] = (3.0, 60.0)  # (connect, read) per HTTP request
    deadline_s: float = defaults.REMOTE_DEADLINE_S  # the whole remote attempt, retries included

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if len(self.timeout_s) != 2 or min(self.timeout_s) <= 0:
            raise ValueError(f"timeout_s must be (connect, read), both positive, got {self.timeout_s!r}")
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, got {self.deadline_s!r}")


@dataclass(frozen=True)
class Outcome:
    """A map and how it was made: ``fallback_reason`` is None unless the endpoint failed and it ran locally."""

    result: ClassificationResult
    fallback_reason: str | None
    waited_s: float  # wall clock of the whole call


def classify_remote_or_local(
    prepared_or_capture: Prepared | Capture,
    *,
    model_resolver: Callable[[], LoadedModel] | LoadedModel,
    endpoint: RemoteTarget | None,
    fallback_local: bool,
    policy: RemotePolicy = RemotePolicy(),
    profile_name: str | None = None,
) -> Outcome:
    """Classify on ``endpoint`` when given (policy above), else or on fallback locally.

    ``model_resolver`` is the local model or a callable giving it; it is called only
    when classifying locally, so a remote-only run needs no model file.
    ``profile_name`` applies when a :class:`Capture` is prepared locally (the
    service reads the profile from the TIFF metadata).
    ``result.timings_s["total"]`` is the wall clock of this call, plus the prepare
    wall clock when a :class:`Prepared` is given (what the user waited for the map).
    """
    start = time.perf_counter()
    reason = None
    if endpoint is not None:
        capture = prepared_or_capture.capture if isinstance(prepared_or_capture, Prepared) else prepared_or_capture
        try:
            result = _classify_remote(capture, endpoint, policy)
            # A wrong answer (shape, class ids, no model identity) is a failed call: never drawn or saved.
            check_result(result, cube_shape=expected_cube_shape(prepared_or_capture, profile_name), url=endpoint.url)
        except (RemoteError, OSError) as exc:
            if not fallback_local:
                raise
            reason = one_line(exc)
        else:
            return _outcome(result, prepared_or_capture, None, start)
    model = model_resolver if isinstance(model_resolver, LoadedModel) else model_resolver()
    prepared = prepared_or_capture
    if not isinstance(prepared, Prepared):
        prepared = prepare(prepared, profile_name=profile_name, threads=None)
    return _outcome(classify_prepared(prepared, model), prepared_or_capture, reason, start)


def live_classifier(
    model_resolver: Callable[[], LoadedModel],
    *,
    endpoint: RemoteTarget | None,
    fallback_local: bool,
    policy: RemotePolicy,
) -> Classify:
    """The ``classify(prepared) -> (result, fallback reason)`` of live mode (``neurohsi watch`` and the
    GUI alike): :func:`core.model.live.local_classifier` without an endpoint, else
    :func:`classify_remote_or_local` with ``policy`` (the user's deadline) for every capture.
    The model is resolved now (a bad model fails before watching starts) and again for every
    capture (cached per file version: cheap), so an installed or reverted model maps the next capture."""
    if endpoint is None:
        current = [model_resolver(), None]
        current[1] = local_classifier(current[0])

        def local(prepared: Prepared) -> tuple[ClassificationResult, str | None]:
            loaded = model_resolver()
            if loaded is not current[0]:
                current[:] = [loaded, local_classifier(loaded)]
            return current[1](prepared)

        local.workers = current[1].workers  # both cores classify (core.model.live.LIVE_CLASSIFIERS)
        local.warm_up = current[1].warm_up
        return local

    def classify(prepared: Prepared) -> tuple[ClassificationResult, str | None]:
        outcome = classify_remote_or_local(prepared, model_resolver=model_resolver, endpoint=endpoint,
                                           fallback_local=fallback_local, policy=policy)
        return outcome.result, outcome.fallback_reason

    return classify


def _outcome(result: ClassificationResult, given, reason: str | None, start: float) -> Outcome:
    waited = time.perf_counter() - start
    before = given.timings_s.get("total", 0.0) if isinstance(given, Prepared) else 0.0
    return Outcome(replace(result, timings_s={**result.timings_s, "total": before + waited}), reason, waited)


_pool: dict[tuple, list[ScoringClient]] = {}
_pool_lock = threading.Lock()


def _give_back(key: tuple, client: ScoringClient) -> None:
    with _pool_lock:
        _pool.setdefault(key, []).append(client)


def _take_client(endpoint: RemoteTarget, policy: RemotePolicy) -> tuple[tuple, ScoringClient]:
    key = (endpoint.url, endpoint.key, endpoint.deployment, id(endpoint.token_auth), policy)
    with _pool_lock:
        idle = _pool.get(key)
        if idle:
            return key, idle.pop()
    client = ScoringClient(
        endpoint.url, key=endpoint.key, retries=policy.retries, timeout=policy.timeout_s,
        deadline_s=policy.deadline_s, deployment=endpoint.deployment, token_auth=endpoint.token_auth,
    )
    return key, client


def _classify_remote(capture: Capture, endpoint: RemoteTarget, policy: RemotePolicy) -> ClassificationResult:
    """One remote attempt within ``policy.deadline_s`` (the client's deadline); ``RemoteError`` on failure."""
    key, client = _take_client(endpoint, policy)  # ValueError for bad settings: raised as is
    # On any error the client is dropped, never pooled again: after a deadline its
    # abandoned request may still be using the session.
    result = client.classify_capture(capture)
    _give_back(key, client)
    return result


def drop_clients() -> None:
    """Close every pooled client (tests, settings changes)."""
    with _pool_lock:
        clients = [c for idle in _pool.values() for c in idle]
        _pool.clear()
    for client in clients:
        client.close()
