"""Entra ID token auth for an aad_token endpoint: the token is sent, refreshed before it expires, and a
refresh that fails mid-session falls back to local classification with the usual reason (issue 24).

No Entra ID here: a stand-in credential answers ``get_token`` as azure-identity does (an object with
``token`` and ``expires_on``, epoch seconds) on a clock the test moves; the endpoint is a loopback server
recording the Authorization headers it receives.
"""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import pytest

from core.model.files import load_model
from remote.endpoint_auth import SCORING_SCOPE, EntraTokenAuth
from remote.remote_or_local import RemoteTarget, classify_remote_or_local, drop_clients
from remote.scoring_client import RemoteError, ScoringClient
from tests.support.loopback_http import LoopbackHTTP
from tests.support.scoring import profile_id_of, save_random_model, small_capture

INFO = {"service": "neurohsi-scoring", "model": {"name": "m"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeCredential:
    """``get_token(scope)`` like azure-identity: a fresh token valid one hour from the clock, or an error."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.calls, self.scopes, self.fail = clock, 0, [], False

    def get_token(self, *scopes, **kwargs):
        self.calls += 1
        self.scopes.append(scopes)
        if self.fail:
            raise RuntimeError("AADSTS700082: the refresh token has expired due to inactivity")
        return SimpleNamespace(token=f"entra-token-{self.calls:04d}", expires_on=int(self.clock() + 3600))


class Endpoint(LoopbackHTTP):
    """Loopback server: GET answers the service info (401 when told to), POST 503; records Authorization."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.auth.append(self.headers.get("Authorization"))
                status = owner.status if self.command == "GET" else 400
                data = json.dumps(INFO if status == 200 else {"error": "no"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.fixture
def clock():
    return Clock()


def test_token_is_sent_and_refreshed_before_it_expires(clock):
    credential = FakeCredential(clock)
    auth = EntraTokenAuth(credential, clock=clock)
    with Endpoint() as endpoint:
        client = ScoringClient(endpoint.url, token_auth=auth)
        client.ping()
        clock.now += 1800  # half an hour later: the same token
        client.ping()
        clock.now += 1600  # 3400 s after issue, within the 300 s margin: a new one before the request
        client.ping()
    assert endpoint.auth == ["Bearer entra-token-0001", "Bearer entra-token-0001", "Bearer entra-token-0002"]
    assert credential.calls == 2 and credential.scopes[0] == (SCORING_SCOPE,)
    assert "entra-token" not in repr(client) and "entra-token" not in repr(auth)


def test_rejected_token_says_so(clock):
    with Endpoint() as endpoint:
        endpoint.status = 401
        with pytest.raises(RemoteError, match=r"Entra ID token rejected \(HTTP 401\)"):
            ScoringClient(endpoint.url, token_auth=EntraTokenAuth(FakeCredential(clock), clock=clock)).ping()


def test_a_failed_refresh_mid_session_falls_back_to_local(clock, tmp_path):
    capture = small_capture(3)
    model_path = tmp_path / "m.safetensors"
    save_random_model(model_path, profile_id=profile_id_of(capture), seed=2)
    credential = FakeCredential(clock)
    auth = EntraTokenAuth(credential, clock=clock)
    with Endpoint() as endpoint:
        ScoringClient(endpoint.url, token_auth=auth).ping()
        credential.fail = True  # signed out, consent revoked, network to Entra ID down...
        clock.now += 3500
        try:
            outcome = classify_remote_or_local(capture, model_resolver=load_model(model_path),
                                               endpoint=RemoteTarget(endpoint.url, token_auth=auth),
                                               fallback_local=True)
        finally:
            drop_clients()
        assert len(endpoint.auth) == 1  # no request went out without a valid token
    assert outcome.result.source == "local"
    assert "Entra ID sign-in for the endpoint failed" in outcome.fallback_reason
    assert "AADSTS700082" in outcome.fallback_reason


def test_settings_that_cannot_work_are_refused(clock):
    auth = EntraTokenAuth(FakeCredential(clock), clock=clock)
    with pytest.raises(ValueError, match="over plain http"):
        ScoringClient("http://scoring.example.org/score", token_auth=auth)
    with pytest.raises(ValueError, match="not both"):
        ScoringClient("https://scoring.example.org/score", key="k", token_auth=auth)
    with pytest.raises(ValueError, match="azure-identity credential"):
        EntraTokenAuth(object())
