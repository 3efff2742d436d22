"""Second fuzz pass on the real scoring service: hundreds of slow connections, gunicorn's own errors,
frames larger than the sensor, memory under attack (issue 26).

The real ``azureml-inference-server-http`` on 127.0.0.1 (gunicorn, the launcher's worker) with
short deadlines so the tests are quick; a second one with small caps for the 503 answers.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time

import numpy as np
import pytest
import requests
import tifffile

from core.model.files import load_model
from core.model.inference import classify
from remote.scoring_client import ScoringClient
from remote.scoring_protocol import ScoringParams, encode_request
from remote.scoring_server import local_scoring_server
from tests.support.scoring import capture_tiffs, profile_id_of, save_random_model, small_capture
from tests.support.slow_clients import SlowClients


MiB = 2**20
# What one request of three deflate-compressed 8192 x 8191 frames cost before the fix: +435 MB.
# The frames are refused on their TIFF headers now; the worker may grow by allocator noise only.
ATTACK_GROWTH_BOUND = 150 * MiB


@pytest.fixture(scope="module")
def capture():
    return small_capture(3)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, capture):
    path = tmp_path_factory.mktemp("fuzzmodel") / "m.safetensors"
    save_random_model(path, profile_id=profile_id_of(capture), name="fuzz")
    return path


@pytest.fixture(scope="module")
def service(model_path):
    env = {"NEUROHSI_READ_IDLE_S": "3", "NEUROHSI_READ_BUDGET_S": "8", "NEUROHSI_HEADER_DEADLINE_S": "4"}
    with local_scoring_server(model_path, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def capped_service(model_path):
    env = {"NEUROHSI_MAX_CONNECTIONS": "24", "NEUROHSI_FRONT_BUFFER_MB": "1", "NEUROHSI_BODY_BUDGET_MB": "1"}
    with local_scoring_server(model_path, env=env) as url:
        yield url


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("/")[2].split(":")
    return host, int(port)


def _exchange(address, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes or 1 s of silence."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        sock.settimeout(timeout)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer:
                head, _, body = answer.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
                if length and len(body) >= length[0]:
                    break
        return answer


def _status_and_json(answer: bytes) -> tuple[int, dict, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body), head


def _server_tree_rss(port: int) -> int:
    import psutil

    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            root = psutil.Process(conn.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    raise AssertionError(f"no process listens on port {port}")


# ------------------------------------------------------------------ slow connections


def test_200_slow_header_connections_hold_no_thread_and_are_cut_at_the_header_deadline(service, capture, model_path):
    base = service.rsplit("/", 1)[0]
    expected = classify(capture, load_model(model_path)).labels
    with SlowClients(_address(service), 200, interval_s=0.5, headers_only=True) as slow:
        time.sleep(1.0)
        # More slow connections than the worker's 32 threads: liveness and scoring still answer.
        statuses = [requests.get(base + "/", timeout=5).status_code for _ in range(10)]
        result = ScoringClient(service, deadline_s=20).classify_capture(capture)
        deadline = time.monotonic() + 20
        while slow.closed_by_server < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        closed = slow.closed_by_server
    assert statuses == [200] * 10
    np.testing.assert_array_equal(result.labels, expected)
    assert closed == 200  # NEUROHSI_HEADER_DEADLINE_S=4: every one was cut


def test_a_header_trickle_gets_a_json_408(service):
    with socket.create_connection(_address(service), timeout=15) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for _ in range(10):  # one header byte a second: never idle, but over the header deadline
            time.sleep(1.0)
            try:
                sock.sendall(b"X")
            except OSError:
                break
        sock.settimeout(5)
        try:
            answer = sock.recv(4096)
        except OSError:
            pass
    status, body, _ = _status_and_json(answer)
    assert status == 408
    assert "headers not received in time" in body["error"]


def test_connections_over_the_cap_get_503_with_retry_after_and_liveness_recovers(capped_service):
    address = _address(capped_service)
    idle = [socket.create_connection(address, timeout=5) for _ in range(30)]
    try:
        time.sleep(0.5)
        refused = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                data = sock.recv(4096)
            except OSError:
                continue
            if data.startswith(b"HTTP/1.1 503"):
                status, body, head = _status_and_json(data)
                assert b"Retry-After: 2" in head
                assert "too many open connections" in body["error"]
                refused += 1
    finally:
        for sock in idle:
            sock.close()
    assert refused == 6  # 30 opened, 24 allowed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if requests.get(capped_service.rsplit("/", 1)[0] + "/", timeout=5).status_code == 200:
            break
        time.sleep(0.2)
    else:
        pytest.fail("liveness did not come back after the connections closed")


def test_bodies_over_the_worker_budget_get_503(capped_service):
    body = json.dumps({"raw_image": [[0] * 1000] * 700}).encode()  # ~2.8 MB, over the 1 MB budgets
    # Content-Length: the front's buffer budget answers; chunked: the entry script's body budget.
    declared = requests.post(capped_service, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    chunked = requests.post(
        capped_service, data=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
        headers={"Content-Type": "application/json"}, timeout=30,
    )
    for answer in (declared, chunked):
        assert answer.status_code == 503, answer.text[:200]
        assert answer.headers["Retry-After"] == "2"
        assert "too much at once" in answer.json()["error"]


# ------------------------------------------------------------------ gunicorn's own answers

MALFORMED = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "bad method": b"P\x00ST /score HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad HTTP version": b"GET / HTTP/9.x\r\nHost: x\r\n\r\n",
    "request line too long": b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "too many headers": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
    "header too large": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "invalid header name": b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
    "obsolete folding": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
    "unsupported transfer coding": b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "content-length and chunked": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "invalid chunk size": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"
    ),
    "chunk missing terminator": (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX"
        b"0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_http_gets_a_json_4xx_and_the_service_stays_up(service, case):
    answer = _exchange(_address(service), MALFORMED[case])
    status, body, head = _status_and_json(answer)
    assert 400 <= status < 500 or status == 501, (case, answer[:300])
    assert b"content-type: application/json" in head.lower()
    assert isinstance(body["error"], str) and body["error"]
    if case == "invalid chunk size":
        assert status == 400
    assert requests.get(service.rsplit("/", 1)[0] + "/", timeout=5).status_code == 200


# ------------------------------------------------------------------ frames larger than the sensor


def _deflate_frame(rows: int, cols: int) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((rows, cols), np.uint16), compression="zlib")
    return buffer.getvalue()


def test_deflated_frames_larger_than_the_sensor_are_refused_without_decoding(service, capture):
    port = _address(service)[1]
    big = _deflate_frame(8192, 8191)
    assert len(big) < 1_000_000  # a few hundred KB that would inflate to 134 MB each
    params = ScoringParams(None, None)
    body, ctype = encode_request(big, big, big, params)
    before = _server_tree_rss(port)
    peak = before
    answers = []

    def attack():
        answers.append(requests.post(service, data=body, headers={"Content-Type": ctype}, timeout=60))

    threads = [threading.Thread(target=attack) for _ in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _server_tree_rss(port))
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [400] * 4
    assert "larger than the sensor" in answers[0].json()["error"]
    assert "8192x8191" in answers[0].json()["error"]
    assert peak - before < ATTACK_GROWTH_BOUND, (before / MiB, peak / MiB)
    # A frame the sensor's size still scores.
    raw, dark, white = capture_tiffs(capture)
    ok_body, ok_type = encode_request(raw, dark, white, ScoringParams(None, None))
    assert requests.post(service, data=ok_body, headers={"Content-Type": ok_type}, timeout=60).status_code == 200


def test_thesis_json_frame_larger_than_the_sensor_is_refused(service):
    rows = [[0] * 400] * 210  # the synthetic-small sensor is 203 x 303
    body = json.dumps({"raw_image": rows, "white_ref": rows, "black_ref": rows}).encode()
    answer = requests.post(service, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400
    assert "larger than the sensor (203x303)" in answer.json()["error"]


def test_expect_100_continue_is_answered_before_the_body(service):
    with socket.create_connection(_address(service), timeout=10) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")  # the front does not wait for the body
        sock.sendall(b"[]")
        answer = b""
        while b"must be a JSON object" not in answer:  # headers and body may come in separate reads
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"must be a JSON object" in answer


def test_40_slow_chunked_bodies_hold_no_thread_and_get_408_at_the_budget(service):
    base = service.rsplit("/", 1)[0]
    head = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n"
    socks = [socket.create_connection(_address(service), timeout=15) for _ in range(40)]  # more than the 32 threads
    for sock in socks:
        sock.sendall(head)
    stop = threading.Event()

    def trickle():  # a one-byte chunk every 0.5 s: never idle, never finished
        while not stop.wait(0.5):
            for sock in socks:
                try:
                    sock.sendall(b"1\r\n1\r\n")
                except OSError:
                    pass

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    try:
        time.sleep(1.0)
        statuses = [requests.get(base + "/", timeout=2).status_code for _ in range(5)]
        answers = []
        for sock in socks:
            sock.settimeout(15)
            try:
                answers.append(sock.recv(4096))
            except OSError:
                answers.append(b"")
    finally:
        stop.set()
        feeder.join(timeout=5)
        for sock in socks:
            sock.close()
    assert statuses == [200] * 5
    assert all(a.startswith(b"HTTP/1.1 408") and b"not received in time" in a for a in answers), answers[:2]
