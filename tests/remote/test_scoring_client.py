"""ScoringClient against small local servers: timeouts, safe retries, TLS, a service stopped mid-run."""
from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import requests

from remote.scoring_client import RemoteError, ScoringClient, normalise_url
from remote.scoring_server import ScoringServerError, local_scoring_server
from tests.support.loopback_http import LoopbackHTTP
from tests.support.scoring import listening_addresses, profile_id_of, save_random_model, small_capture

INFO = {"service": "neurohsi-scoring", "model": {"name": "m"}}


class ScriptedServer(LoopbackHTTP):
    """HTTP server on 127.0.0.1 answering with a scripted list of (status, JSON body[, headers]); counts requests.

    ``stall`` maps a request's number (1 = the first) to seconds slept before it is answered.
    """

    def __init__(self, script, *, tls_context: ssl.SSLContext | None = None, stall: dict[int, float] | None = None):
        self.script = list(script)
        stall = stall or {}
        self.requests: list[tuple[str, dict]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                owner.requests.append((self.command, dict(self.headers)))
                time.sleep(stall.get(len(owner.requests), 0.0))
                status, body, *extra = owner.script[min(len(owner.requests), len(owner.script)) - 1]
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):  # keep test output quiet
                pass

        self.serve(Handler, tls_context=tls_context)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (or drops them at once); counts accepts."""

    def __init__(self, *, drop: bool = False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.drop = drop
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/score"
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            if self.drop:
                conn.recv(1024)
                conn.close()
            else:
                self.held.append(conn)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


# ------------------------------------------------------------------ timeouts and connection errors


def test_read_timeout_is_honoured_and_not_retried():
    with SilentServer() as server:
        client = ScoringClient(server.url, timeout=(2.0, 0.5), retries=3, backoff_s=0.01)
        start = time.monotonic()
        with pytest.raises(RemoteError, match=r"no answer from http://127\.0\.0\.1:\d+/score within 0\.5 s") as info:
            client.ping()
        elapsed = time.monotonic() - start
    assert elapsed > 0.4  # the 0.5 s read timeout was waited out (how long after it depends on the machine)
    assert info.value.status is None
    # The request may have reached the service: a read timeout is not retried.
    assert server.accepted == 1


def test_dropped_connections_are_retried_then_reported():
    with SilentServer(drop=True) as server:
        client = ScoringClient(server.url, retries=2, backoff_s=0.01)
        with pytest.raises(RemoteError, match="cannot reach") as info:
            client.ping()
    assert server.accepted == 3
    assert info.value.status is None


def test_connection_refused_says_cannot_reach():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ScoringClient(f"http://127.0.0.1:{port}", retries=1, backoff_s=0.01)
    with pytest.raises(RemoteError, match=rf"cannot reach http://127\.0\.0\.1:{port}/score \(connection refused\)"):
        client.ping()


# ------------------------------------------------------------------ which answers are retried


@pytest.mark.parametrize(
    ("script", "attempts", "outcome"),
    [
        ([(503, {"error": "busy"}), (503, {}), (200, INFO)], 3, None),
        ([(504, {}), (200, INFO)], 2, None),
        ([(502, {})] * 5, 3, "service unavailable (HTTP 502)"),
        ([(400, {"error": "raw: not a TIFF file"})], 1, "request rejected (HTTP 400): raw: not a TIFF file"),
        ([(401, {"error": "endpoint key rejected"})], 1, "endpoint key rejected (HTTP 401)"),
        ([(413, {"message": "body too big"})], 1, "request too large (HTTP 413): body too big"),
        ([(429, {}, {"Retry-After": "0"}), (200, INFO)], 2, None),
        ([(429, {})] * 4, 3, "busy (too many requests) (HTTP 429)"),
        ([(408, {}), (200, INFO)], 2, None),
        ([(500, {"error": "internal error while scoring; see the service log"})], 1, "service error (HTTP 500)"),
        # Azure ML managed endpoints wrap every non-200 answer of the container in a 424.
        ([(424, {}, {"ms-azureml-model-error-statuscode": "503"}), (200, INFO)], 2, None),
        ([(424, {"error": "raw: not a TIFF"}, {"ms-azureml-model-error-statuscode": "400"})], 1,
         "request rejected (HTTP 400): raw: not a TIFF"),
    ],
)
def test_retries_on_408_429_502_503_504_only(script, attempts, outcome):
    with ScriptedServer(script) as server:
        # No deadline: busy answers are retried `retries` times (with one, until the deadline: below).
        client = ScoringClient(server.url, key="k", retries=2, backoff_s=0.01, deadline_s=None)
        if outcome is None:
            assert client.ping() >= 0
            assert client.service_info == INFO
        else:
            with pytest.raises(RemoteError, match=outcome.replace("(", r"\(").replace(")", r"\)")) as info:
                client.ping()
            inner = script[0][2].get("ms-azureml-model-error-statuscode") if len(script[0]) > 2 else None
            assert info.value.status == int(inner or script[0][0])
            assert isinstance(info.value.body, bytes)
        assert len(server.requests) == attempts
        assert all(headers.get("Authorization") == "Bearer k" for _, headers in server.requests)


def test_busy_answers_are_retried_until_the_deadline_then_it_says_so():
    with ScriptedServer([(503, {"error": "busy"})]) as server:
        client = ScoringClient(server.url, retries=1, backoff_s=0.05, deadline_s=4.0)
        start = time.monotonic()
        with pytest.raises(RemoteError, match=r"service unavailable \(HTTP 503\): busy; gave up after") as info:
            client.ping()
        elapsed = time.monotonic() - start
    # More attempts than `retries`: the deadline, not a count, ends a run of busy answers. Whether
    # retrying stops before the last wait or the deadline passes during the last retry depends on
    # the machine's speed; either way the message names the busy answer and the deadline.
    assert len(server.requests) >= 3
    assert elapsed < 30  # a hang check, not a timing: unlimited busy retries would never end
    assert "past the 4 s deadline" in str(info.value)
    assert info.value.status == 503
    assert info.value.deadline or "the next retry" in str(info.value)


def _busy_then_ok(stall: dict[int, float], deadline_s: float) -> tuple[RemoteError, int]:
    """ping() against a service answering 503 "busy" then 200, request N held ``stall[N]`` s: (error, requests)."""
    with ScriptedServer([(503, {"error": "busy"}), (200, INFO)], stall=stall) as server:
        client = ScoringClient(server.url, retries=1, backoff_s=0.01, deadline_s=deadline_s)
        with pytest.raises(RemoteError) as info:
            client.ping()
        return info.value, len(server.requests)


def test_a_deadline_passing_during_a_retry_still_names_the_busy_answer():
    # The first answer is busy; the retry is taken (2.7 s of slack for it) but answered too late.
    error, requests = _busy_then_ok({2: 8.0}, deadline_s=3.0)
    assert requests == 2 and error.status == 503 and error.deadline
    assert "service unavailable (HTTP 503): busy; gave up after" in str(error)
    assert "no answer to the last retry, past the 3 s deadline" in str(error)


def test_a_retry_that_could_not_be_answered_before_the_deadline_is_not_started():
    # The busy answer took 3 s; another 3 s attempt cannot end before the 5 s deadline (2 s of
    # slack for the first answer on a slow machine).
    error, requests = _busy_then_ok({1: 3.0}, deadline_s=5.0)
    assert requests == 1 and error.status == 503 and not error.deadline
    assert "busy; gave up after" in str(error) and "the next retry" in str(error)


@pytest.mark.parametrize("retry_after", ["soon", "-5", "nan", "", "Mon, 99 Foo 2026"])
def test_garbage_or_negative_retry_after_is_ignored_not_fatal(retry_after):
    script = [(429, {}, {"Retry-After": retry_after})] * 3 + [(200, INFO)]
    with ScriptedServer(script) as server:
        client = ScoringClient(server.url, retries=1, backoff_s=0.01, deadline_s=10.0)
        assert client.ping() >= 0
        assert len(server.requests) == 4


def test_retry_after_past_the_deadline_gives_up_at_once_and_says_why():
    with ScriptedServer([(429, {"message": "Too many pending requests"}, {"Retry-After": "30"}), (200, INFO)]) as server:
        client = ScoringClient(server.url, retries=1, backoff_s=0.01, deadline_s=20.0)
        start = time.monotonic()
        with pytest.raises(RemoteError) as info:
            client.ping()
        elapsed = time.monotonic() - start
        assert len(server.requests) == 1
    message = str(info.value)
    assert elapsed < 15  # not the 20 s deadline (nor the 30 s asked for)
    assert "HTTP 429" in message
    assert "asked to retry after 30 s (Retry-After), past the 20 s deadline" in message
    assert "no result" not in message  # it did not wait 20 s: it says what happened


def test_retries_zero_retries_nothing():
    with ScriptedServer([(503, {}), (200, INFO)]) as server:
        with pytest.raises(RemoteError, match="HTTP 503"):
            ScoringClient(server.url, retries=0, deadline_s=5.0).ping()
        assert len(server.requests) == 1


def test_scoring_post_is_retried_on_503_but_not_on_400():
    capture = small_capture(0)
    with ScriptedServer([(503, {}), (400, {"error": "bad frame"})]) as server:
        client = ScoringClient(server.url, retries=3, backoff_s=0.01)
        with pytest.raises(RemoteError, match="bad frame"):
            client.classify_capture(capture)
        assert [method for method, _ in server.requests] == ["POST", "POST"]


def test_ping_refuses_something_that_is_not_the_service():
    with ScriptedServer([(200, {"hello": "world"})]) as server:
        with pytest.raises(RemoteError, match="not a NeuroHSI scoring service"):
            ScoringClient(server.url).ping()


# ------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and a server TLS context using it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def test_tls_is_verified_even_with_a_lax_session(self_signed):
    cert_path, context = self_signed
    with ScriptedServer([(200, INFO)], tls_context=context) as server:
        lax = requests.Session()
        lax.verify = False  # a caller's session cannot switch verification off
        with pytest.raises(RemoteError, match="TLS verification failed"):
            ScoringClient(server.url, key="k", session=lax, retries=3, backoff_s=0.01).ping()
        assert server.requests == []  # nothing (and no key) was sent
        assert ScoringClient(server.url, key="k", ca_bundle=cert_path).ping() >= 0
        assert len(server.requests) == 1


# ------------------------------------------------------------------ a real service stopped mid-run


def test_service_stopped_mid_run_gives_a_clear_error(tmp_path):
    capture = small_capture(1)
    model = tmp_path / "m.safetensors"
    save_random_model(model, profile_id=profile_id_of(capture))
    outcomes: list = []
    started = threading.Event()

    with local_scoring_server(model) as url:
        client = ScoringClient(url, retries=2, backoff_s=0.05, timeout=(2, 10))

        def loop():
            while True:
                try:
                    outcomes.append(client.classify_capture(capture))
                    started.set()
                except Exception as exc:  # the last outcome is examined below
                    outcomes.append(exc)
                    started.set()
                    return

        thread = threading.Thread(target=loop)
        thread.start()
        assert started.wait(30)
        time.sleep(0.2)
    thread.join(timeout=30)
    assert not thread.is_alive()
    error = outcomes[-1]
    assert isinstance(error, RemoteError), repr(error)
    assert error.status is None and "cannot reach" in str(error)
    assert any(not isinstance(o, Exception) for o in outcomes[:-1])
    with pytest.raises(RemoteError, match="cannot reach"):
        ScoringClient(url, retries=0).ping()
    port = int(url.split(":")[2].split("/")[0])
    assert listening_addresses(port) == []  # the server and its workers are gone


def test_server_that_cannot_start_raises_with_its_log(tmp_path):
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"this is not a model")
    with pytest.raises(ScoringServerError, match="exited with code") as info:
        with local_scoring_server(bad_model, startup_timeout_s=60):
            pass
    assert "not a safetensors file" in str(info.value)
    with pytest.raises(FileNotFoundError):
        with local_scoring_server(tmp_path / "missing.safetensors"):
            pass


def test_entry_script_finds_the_model_by_configuration(tmp_path):
    from remote.scoring_entry import ModelNotFoundError, resolve_model_path
    from resources import DEMO_MODEL_PATH

    nested = tmp_path / "model-dir" / "neurohsi-conv2dnet" / "1"
    nested.mkdir(parents=True)
    (nested / "model.safetensors").write_bytes(b"")
    assert resolve_model_path({"AZUREML_MODEL_DIR": str(tmp_path / "model-dir")}) == nested / "model.safetensors"
    explicit = tmp_path / "explicit.safetensors"
    explicit.write_bytes(b"")
    assert resolve_model_path({"NEUROHSI_MODEL_PATH": str(explicit), "AZUREML_MODEL_DIR": str(tmp_path)}) == explicit
    # No model found is an error (the container must not become ready), never the demo model.
    with pytest.raises(ModelNotFoundError, match="no \\*.safetensors model file under AZUREML_MODEL_DIR="):
        resolve_model_path({"AZUREML_MODEL_DIR": str(tmp_path / "empty")})
    with pytest.raises(ModelNotFoundError, match="no model configured"):
        resolve_model_path({})
    assert DEMO_MODEL_PATH.is_file()


# ------------------------------------------------------------------ construction


def test_url_normalisation_and_validation():
    assert normalise_url("http://127.0.0.1:5001") == "http://127.0.0.1:5001/score"
    assert normalise_url("https://x.inference.ml.azure.com/score") == "https://x.inference.ml.azure.com/score"
    for bad in ("", "ftp://host/score", "127.0.0.1:5001", "http:///score"):
        with pytest.raises(ValueError):
            normalise_url(bad)


def test_client_refuses_unsafe_or_invalid_settings(tmp_path):
    with pytest.raises(ValueError, match="plain http"):
        ScoringClient("http://scoring.hospital.example/score", key="secret")
    ScoringClient("http://localhost:5001", key="secret")  # loopback is fine
    with pytest.raises(ValueError, match="timeout"):
        ScoringClient("https://h/score", timeout=(0, 5))
    with pytest.raises(ValueError, match="CA bundle not found"):
        ScoringClient("https://h/score", ca_bundle=tmp_path / "missing.pem")
    assert "secret" not in repr(ScoringClient("https://h/score", key="secret"))
    # Uploads are gzipped for endpoints elsewhere, sent as they are on this machine, unless told otherwise.
    assert ScoringClient("https://h/score").compress_upload is True
    assert ScoringClient("http://127.0.0.1:5001").compress_upload is False
    assert ScoringClient("http://127.0.0.1:5001", compress_upload=True).compress_upload is True
