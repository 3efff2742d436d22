"""The scoring entry script under the real azureml-inference-server-http on 127.0.0.1.

Two servers per module: ``small_service`` (small synthetic captures, key required,
1 MB request limit, 2 cached references) and ``thesis_service`` (full-resolution
thesis-profile captures, no key) for the thesis JSON protocol.
"""
from __future__ import annotations

import hashlib
import json
import threading

import numpy as np
import pytest
import requests

from core.capture.camera_profiles import THESIS_PROFILE_ID
from core.capture.files import Capture, frame_to_bytes
from core.model.inference import classify
from core.model.files import load_model
from remote.scoring_client import RemoteError, ScoringClient
from remote.scoring_protocol import ScoringParams, decode_result, encode_request, gzip_body
from remote.scoring_server import local_scoring_server
from tests.support.scoring import (
    capture_tiffs,
    listening_addresses,
    profile_id_of,
    save_random_model,
    small_capture,
    thesis_json_request,
    write_capture,
)

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def small_captures():
    return [small_capture(seed) for seed in range(4)]


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory, small_captures):
    path = tmp_path_factory.mktemp("model") / "small.safetensors"
    save_random_model(path, profile_id=profile_id_of(small_captures[0]), seed=3)
    return path


@pytest.fixture(scope="module")
def small_service(small_model_path):
    env = {"NEUROHSI_REFERENCE_CACHE": "2"}
    with local_scoring_server(small_model_path, key=KEY, max_request_mb=1, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def expected_labels(small_model_path, small_captures):
    model = load_model(small_model_path)
    return [classify(c, model).labels for c in small_captures]


def _post_binary(url, raw, dark, white, params=None, headers=AUTH, **kwargs):
    if params is None:
        params = ScoringParams(
            hashlib.sha256(dark).hexdigest() if dark else None, hashlib.sha256(white).hexdigest() if white else None
        )
    body, ctype = encode_request(raw, dark, white, params)
    return requests.post(url, data=body, headers={**headers, "Content-Type": ctype}, timeout=30, **kwargs)


# ------------------------------------------------------------------ agreement with local classification


def test_binary_and_thesis_json_match_local_classification(tmp_path):
    """Full-resolution thesis capture: local, binary protocol and thesis JSON give the same label map."""
    from core.capture.synthetic.captures import generate_capture

    synthetic = generate_capture(seed=5)
    capture = Capture(synthetic.raw, synthetic.dark, synthetic.white, synthetic.metadata)
    model_path = tmp_path / "thesis.safetensors"
    save_random_model(model_path, profile_id=THESIS_PROFILE_ID, seed=1)
    local = classify(capture, load_model(model_path))
    raw_path = write_capture(tmp_path / "capture", capture)
    with local_scoring_server(model_path) as url:
        client = ScoringClient(url, compress_upload=False)  # exact byte counts below
        remote = client.classify_files(raw_path)
        first_bytes = client.last_exchange["request_bytes"]
        again = client.classify_files(raw_path)
        cached_bytes = client.last_exchange["request_bytes"]
        gz_client = ScoringClient(url, compress_upload=True)
        gzipped = gz_client.classify_files(raw_path)
        gz_bytes = gz_client.last_exchange["request_bytes"]
        thesis = requests.post(url, json=thesis_json_request(capture), timeout=120)
    np.testing.assert_array_equal(remote.labels, local.labels)
    np.testing.assert_array_equal(again.labels, local.labels)
    np.testing.assert_array_equal(gzipped.labels, local.labels)
    assert gz_bytes < first_bytes * 0.9  # the same three frames, gzipped
    np.testing.assert_array_equal(remote.rgb, local.rgb)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=2e-3)
    assert remote.source == url and remote.cube is None
    assert remote.model.sha256 == local.model.sha256
    assert {"upload", "server", "total", "preprocess", "infer"} <= set(remote.timings_s)
    # With cached references only the raw frame (plus a few hundred bytes of framing) goes on the wire.
    raw_size = raw_path.stat().st_size
    assert first_bytes > 3 * raw_size - 1000
    assert raw_size < cached_bytes < raw_size + 1000
    assert thesis.status_code == 200, thesis.text[:300]
    answer = thesis.json()
    np.testing.assert_array_equal(np.array(answer["classification_map"], dtype=np.uint8), local.labels)
    for field in ("time_parsing_data", "time_preProcessing_data", "time_preparing_batches", "time_predict_cMap"):
        assert isinstance(answer[field], float)
    # Issue 24: the patient id sent by a thesis client never comes back (nor reaches a log).
    assert "patient_id" not in answer
    assert "ID0018" not in thesis.text


def test_small_capture_binary_result_matches_local(small_service, small_captures, expected_labels, tmp_path):
    client = ScoringClient(small_service, key=KEY)
    result = client.classify_capture(small_captures[0])
    np.testing.assert_array_equal(result.labels, expected_labels[0])
    assert result.probabilities.shape == (*expected_labels[0].shape, 5)
    raw_path = write_capture(tmp_path, small_captures[1])
    np.testing.assert_array_equal(client.classify_files(raw_path).labels, expected_labels[1])


def test_ping_reports_model_identity(small_service, small_model_path):
    client = ScoringClient(small_service, key=KEY)
    latency = client.ping()
    assert 0 < latency < 5
    assert client.service_info["model"]["sha256"] == load_model(small_model_path).info.sha256
    assert client.service_info["max_request_bytes"] == 1_000_000


# ------------------------------------------------------------------ reference caching


def test_cached_references_then_missing_after_eviction(small_service, small_captures, expected_labels):
    client = ScoringClient(small_service, key=KEY)
    client.classify_capture(small_captures[0])
    assert client.last_exchange["references_sent"] == ["dark", "white"]
    raw_tiff = frame_to_bytes(small_captures[0].raw, small_captures[0].metadata)
    client.classify_capture(small_captures[0])
    assert client.last_exchange["references_sent"] == []
    assert client.last_exchange["request_bytes"] < len(raw_tiff) + 1000
    # Another client's references evict ours (the service keeps 2 here) ...
    ScoringClient(small_service, key=KEY).classify_capture(small_captures[2])
    # ... so the service answers 409 "missing" and the client re-sends them, once.
    result = client.classify_capture(small_captures[0])
    np.testing.assert_array_equal(result.labels, expected_labels[0])
    assert client.last_exchange["http_requests"] == 2
    assert client.last_exchange["references_sent"] == ["dark", "white"]


def test_unknown_reference_hashes_get_409_naming_them(small_service, small_captures):
    raw, _, _ = capture_tiffs(small_captures[3])
    response = _post_binary(small_service, raw, None, None, params=ScoringParams("1" * 64, "2" * 64))
    assert response.status_code == 409
    assert response.json()["missing"] == ["dark", "white"]
    assert "send them" in response.json()["error"]


# ------------------------------------------------------------------ auth and limits


def test_missing_or_wrong_key_is_401(small_service, small_captures):
    raw, dark, white = capture_tiffs(small_captures[0])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}):
        response = _post_binary(small_service, raw, dark, white, headers=headers)
        assert response.status_code == 401, headers
        assert "key" in response.json()["error"]
    assert requests.get(small_service, timeout=10).status_code == 401
    with pytest.raises(RemoteError, match="endpoint key rejected") as info:
        ScoringClient(small_service, key="wrong").classify_capture(small_captures[0])
    assert info.value.status == 401
    assert _post_binary(small_service, raw, dark, white).status_code == 200


def test_oversize_request_is_413(small_service):
    big = b"\0" * 1_200_000
    body, ctype = encode_request(big, None, None, ScoringParams("1" * 64, "2" * 64))
    response = requests.post(small_service, data=body, headers={**AUTH, "Content-Type": ctype}, timeout=30)
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    # Without a declared length (chunked upload) the limit holds while reading.
    chunked = requests.post(
        small_service, data=iter([body[i : i + 100_000] for i in range(0, len(body), 100_000)]),
        headers={**AUTH, "Content-Type": ctype}, timeout=30,
    )
    assert chunked.status_code == 413
    # A small gzip body that inflates past the limit (a compression bomb) is refused too.
    bomb = requests.post(
        small_service, data=gzip_body(body), headers={**AUTH, "Content-Type": ctype, "Content-Encoding": "gzip"}, timeout=30
    )
    assert bomb.status_code == 413 and "inflated" in bomb.json()["error"]


def test_client_reports_413_as_request_too_large(small_service):
    client = ScoringClient(small_service, key=KEY)
    frame = np.random.default_rng(0).integers(0, 1023, (800, 800), dtype=np.uint16)
    with pytest.raises(RemoteError, match="request too large") as info:
        client.classify_capture(Capture(frame, frame, frame, None))
    assert info.value.status == 413


# ------------------------------------------------------------------ bad requests


def _bad_requests(captures):
    """(name, send(url) -> response, expected status, message fragment) for each kind of bad request."""
    raw, dark, white = capture_tiffs(captures[0])
    other_raw, other_dark, _ = capture_tiffs(small_capture(9, height=20, width=30))
    body, ctype = encode_request(raw, dark, white, ScoringParams())

    def post(data, content_type):
        return lambda url: requests.post(url, data=data, headers={**AUTH, "Content-Type": content_type}, timeout=30)

    def thesis(obj):
        return post(json.dumps(obj).encode(), "application/json")

    small_lists = {"raw_image": [[1, 2], [3, 4]], "white_ref": [[9, 9], [9, 9]], "black_ref": [[0, 0], [0, 0]]}
    return [
        ("truncated multipart", post(body[: len(body) // 2], ctype), 400, "closing boundary"),
        ("multipart without boundary", post(body, "multipart/form-data"), 400, "boundary"),
        ("garbage multipart", post(b"\x00\xff" * 500, ctype), 400, "malformed"),
        ("non-TIFF raw", lambda url: _post_binary(url, b"not a tiff at all", dark, white), 400, "raw: not a TIFF"),
        ("non-TIFF dark", lambda url: _post_binary(url, raw, b"GIF89a....", white), 400, "dark"),
        ("dark of another shape", lambda url: _post_binary(url, raw, other_dark, white), 400, "differs from raw"),
        ("raw of another shape", lambda url: _post_binary(url, other_raw, dark, white), 400, "differs from raw"),
        (
            "dark not matching its hash",
            lambda url: _post_binary(url, raw, dark, white, params=ScoringParams("3" * 64, None)),
            400,
            "does not match params.dark_sha256",
        ),
        ("no references at all", lambda url: _post_binary(url, raw, None, None, params=ScoringParams()), 400, "neither"),
        ("no params part", post(body.replace(b'name="params"', b'name="white"'), ctype), 400, "twice"),
        ("bad params JSON", post(body.replace(b'"return_rgb": true', b'"return_rgb": "yes"'), ctype), 400, "return_rgb"),
        ("unknown profile", lambda url: _post_binary(url, raw, dark, white, params=ScoringParams(profile="nope")), 422, "nope"),
        ("wrong content type", post(b"hello", "text/plain"), 415, "unsupported content type"),
        (
            "corrupt gzip body",
            lambda url: requests.post(
                url, data=b"not gzip", headers={**AUTH, "Content-Type": ctype, "Content-Encoding": "gzip"}, timeout=30
            ),
            400,
            "not valid gzip",
        ),
        ("empty body", post(b"", "application/json"), 400, "empty"),
        ("bad JSON", post(b'{"raw_image": [[1, 2]', "application/json"), 400, "not valid JSON"),
        ("JSON not an object", thesis([1, 2, 3]), 400, "JSON object"),
        ("missing fields", thesis({"raw_image": [[1]]}), 400, "missing field(s): white_ref, black_ref"),
        ("float pixels", thesis({**small_lists, "raw_image": [[1.5, 2], [3, 4]]}), 400, "integers"),
        ("string pixels", thesis({**small_lists, "raw_image": [["1", "2"], ["3", "4"]]}), 400, "integers"),
        ("negative pixels", thesis({**small_lists, "raw_image": [[-1, 2], [3, 4]]}), 400, "0..65535"),
        ("ragged rows", thesis({**small_lists, "raw_image": [[1, 2], [3]]}), 400, "rectangular"),
        ("3-D frame", thesis({**small_lists, "raw_image": [[[1]]]}), 400, "2-D"),
        ("mismatched references", thesis({**small_lists, "white_ref": [[9, 9, 9]]}), 400, "differs from raw_image"),
        ("wrong patch size", thesis({**small_lists, "patch_size": 5}), 400, "patch_size must be 7"),
        ("frame too small for the thesis profile", thesis(small_lists), 400, "raw"),
    ]


@pytest.fixture(scope="module")
def bad_requests(small_captures):
    return _bad_requests(small_captures)


def test_every_bad_request_gets_4xx_with_a_message(small_service, bad_requests):
    for name, send, status, fragment in bad_requests:
        response = send(small_service)
        assert response.status_code == status, (name, response.status_code, response.text[:200])
        message = response.json()["error"]
        assert fragment in message, (name, message)
        # No server paths or stack traces in what the client sees.
        assert "Traceback" not in response.text and "/tmp" not in response.text, (name, response.text[:200])


def test_service_keeps_serving_after_100_bad_requests(small_service, bad_requests, small_captures, expected_labels):
    statuses = set()
    for i in range(100):
        _, send, status, _ = bad_requests[i % len(bad_requests)]
        statuses.add(send(small_service).status_code)
    assert statuses <= {400, 413, 415, 422}
    result = ScoringClient(small_service, key=KEY).classify_capture(small_captures[1])
    np.testing.assert_array_equal(result.labels, expected_labels[1])


def test_incompatible_model_is_422_without_server_paths(small_service, small_captures):
    import dataclasses

    # Readable frames from another camera: the model was made for a different camera profile.
    capture = small_captures[0]
    other = dataclasses.replace(capture.metadata, camera_model="Other-Camera")
    raw, dark, white = (frame_to_bytes(f, other) for f in (capture.raw, capture.dark, capture.white))
    response = _post_binary(small_service, raw, dark, white)
    assert response.status_code == 422
    message = response.json()["error"]
    assert "metadata:Other-Camera" in message
    assert ".safetensors" not in response.text and "/tmp" not in response.text


# ------------------------------------------------------------------ concurrency and binding


def test_8_concurrent_clients_x_10_requests_all_correct(small_service, small_captures, expected_labels):
    failures: list[str] = []
    done = []

    def worker(index: int) -> None:
        client = ScoringClient(small_service, key=KEY, timeout=(5, 60))
        for i in range(10):
            which = (index + i) % 3
            try:
                result = client.classify_capture(small_captures[which])
                if not np.array_equal(result.labels, expected_labels[which]):
                    failures.append(f"client {index} request {i}: wrong map")
                else:
                    done.append(1)
            except Exception as exc:  # collected and reported below
                failures.append(f"client {index} request {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:5]
    assert len(done) == 80


def test_service_listens_only_on_loopback(small_service):
    port = int(small_service.split(":")[2].split("/")[0])
    addresses = listening_addresses(port)
    assert (("127.0.0.1", port)) in addresses
    assert all(ip == "127.0.0.1" for ip, _ in addresses), addresses


def test_result_response_is_the_binary_content_type(small_service, small_captures):
    raw, dark, white = capture_tiffs(small_captures[0])
    response = _post_binary(small_service, raw, dark, white)
    assert response.headers["Content-Type"] == "application/x-neurohsi-result"
    decoded = decode_result(response.content)
    assert decoded.header["model"]["class_ids"] == [1, 2, 3, 4, 5]
    assert set(decoded.header["timings_s"]) >= {"receive", "parse", "decode", "preprocess", "infer", "total"}


# ------------------------------------------------------------------ in-process: unexpected errors


def test_unexpected_error_is_generic_500(small_model_path, small_captures, monkeypatch):
    import flask

    from remote import scoring_entry

    monkeypatch.setenv("NEUROHSI_MODEL_PATH", str(small_model_path))
    monkeypatch.delenv("NEUROHSI_SCORING_KEY", raising=False)
    scoring_entry.init()

    def broken(*args, **kwargs):
        raise RuntimeError(f"secret detail in {small_model_path}")

    monkeypatch.setattr(scoring_entry, "classify_prepared", broken)
    raw, dark, white = capture_tiffs(small_captures[0])
    body, ctype = encode_request(raw, dark, white, ScoringParams())
    app = flask.Flask("test")
    with app.test_request_context("/score", method="POST", data=body, content_type=ctype):
        response = scoring_entry.run(flask.request)
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert json.loads(text) == {"error": "internal error while scoring; see the service log"}
    assert "secret" not in text
