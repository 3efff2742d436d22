"""Binary scoring protocol: round trips and clear errors on truncated or garbage input."""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from remote.scoring_protocol import (
    RESULT_CONTENT_TYPE,
    ScoringParams,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
    gzip_body,
    inflate_body,
    parse_multipart,
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_request_round_trip_keeps_bytes_exact():
    rng = np.random.default_rng(0)
    # Bytes that contain CR LF and dashes, as TIFF data may.
    raw = b"II*\x00" + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes() + b"\r\n--\r\n"
    dark, white = b"\r\n--dark", b"white\r\n"
    params = ScoringParams(_sha(dark), _sha(white), return_probabilities=False, profile="thesis-sm5x5-nir")
    body, ctype = encode_request(raw, dark, white, params)
    request = decode_request(body, ctype)
    assert (request.raw, request.dark, request.white) == (raw, dark, white)
    assert request.params == params


def test_request_without_references_carries_only_raw_and_hashes():
    raw = b"x" * 1000
    params = ScoringParams("a" * 64, "b" * 64)
    body, ctype = encode_request(raw, None, None, params)
    assert len(body) < len(raw) + 600
    request = decode_request(body, ctype)
    assert request.dark is None and request.white is None
    assert request.params.dark_sha256 == "a" * 64


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda body, ct: (body[: len(body) // 2], ct), "closing boundary missing"),
        (lambda body, ct: (b"garbage" * 10, ct), "boundary not found"),
        (lambda body, ct: (body, "multipart/form-data"), "no boundary"),
        (lambda body, ct: (body, "application/octet-stream"), "expected multipart/form-data"),
        (lambda body, ct: (body.replace(b'name="raw"', b'name="cooked"'), ct), "unknown multipart part"),
        (lambda body, ct: (body.replace(b'name="params"', b'name="dark"'), ct), "appears twice"),
        (lambda body, ct: (body.replace(b'name="raw"', b"nameless"), ct), "has no name"),
        (lambda body, ct: (body, "multipart/form-data; boundary=" + "x" * 71), "boundary longer than 70"),
    ],
)
def test_malformed_multipart_raises_clear_value_error(mutate, message):
    body, ctype = encode_request(b"raw-bytes", b"dark", None, ScoringParams())
    bad_body, bad_ctype = mutate(body, ctype)
    with pytest.raises(ValueError, match=message):
        decode_request(bad_body, bad_ctype)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"dark_sha256": "xyz"}).encode(), "dark_sha256 must be 64"),
        (json.dumps({"return_probabilities": "yes"}).encode(), "return_probabilities must be true or false"),
        (json.dumps({"profile": 3}).encode(), "profile must be a string"),
        (json.dumps({"colour": "red"}).encode(), "unknown field"),
    ],
)
def test_bad_params_raise_value_error_naming_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        ScoringParams.from_json(params)


def test_missing_parts_are_named():
    body, ctype = encode_request(b"raw", None, None, ScoringParams())
    body = body.replace(b'name="raw"', b'name="dark"')
    with pytest.raises(ValueError, match="no 'raw' part"):
        decode_request(body, ctype)
    no_params = '--b\r\nContent-Disposition: form-data; name="raw"\r\n\r\nabc\r\n--b--\r\n'.encode()
    with pytest.raises(ValueError, match="no 'params' part"):
        decode_request(no_params, "multipart/form-data; boundary=b")


def test_parse_multipart_accepts_quoted_boundary_and_preamble():
    body = b'preamble\r\n--xyz\r\nContent-Disposition: form-data; name="raw"\r\n\r\nDATA\r\n--xyz--\r\n'
    assert parse_multipart(body, 'multipart/form-data; boundary="xyz"') == {"raw": b"DATA"}


@pytest.mark.parametrize("compress", [True, False])
def test_result_round_trip_labels_exact_probabilities_float16(compress):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, (13, 17), dtype=np.uint8)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(5), size=(13, 17)).astype(np.float32)
    header = {"model": {"name": "m", "sha256": "0" * 64}, "timings_s": {"total": 0.1}}
    body = encode_result(header, labels, rgb=rgb, probabilities=probs, compress=compress)
    result = decode_result(body)
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_array_equal(result.rgb, rgb)
    assert result.probabilities.dtype == np.float32 and result.probabilities.shape == (13, 17, 5)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-3)
    assert result.header["model"]["name"] == "m" and result.header["shape"] == [13, 17]
    assert RESULT_CONTENT_TYPE == "application/x-neurohsi-result"


def test_result_without_optional_arrays():
    labels = np.zeros((4, 6), np.uint8)
    result = decode_result(encode_result({}, labels))
    assert result.rgb is None and result.probabilities is None
    assert result.labels.shape == (4, 6)


def test_compressed_label_map_is_small():
    labels = np.ones((217, 409), np.uint8)
    labels[50:100, 60:200] = 2
    assert len(encode_result({}, labels)) < 2000


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:6], "too short"),
        (lambda b: b"JUNK" + b[4:], "bad magic"),
        (lambda b: b[:4] + b"\x09\x00" + b[6:], "unsupported NeuroHSI result version"),
        (lambda b: b[:-10], "truncated|payload"),
        (lambda b: b[:8] + struct.pack("<I", len(b)) + b[12:], "result header truncated"),
        (lambda b: b[:12] + b"{bad json" + b[21:], "not valid JSON|truncated"),
    ],
)
def test_bad_result_raises_value_error(mutate, message):
    labels = np.arange(24, dtype=np.uint8).reshape(4, 6)
    body = encode_result({"model": {}}, labels, probabilities=np.ones((4, 6, 2), np.float32))
    with pytest.raises(ValueError, match=message):
        decode_result(mutate(body))


def test_uncompressed_result_with_wrong_payload_size_is_rejected():
    body = encode_result({}, np.zeros((4, 6), np.uint8), compress=False)
    with pytest.raises(ValueError, match="payload has 23 bytes, expected 24"):
        decode_result(body[:-1])


def test_encode_result_validates_inputs():
    with pytest.raises(ValueError, match="labels must be uint8"):
        encode_result({}, np.zeros((4, 6), np.int32))
    with pytest.raises(ValueError, match="probabilities must be"):
        encode_result({}, np.zeros((4, 6), np.uint8), probabilities=np.zeros((4, 5, 2)))


def test_gzip_body_round_trip_and_limits():
    body = b"multipart body " * 1000
    packed = gzip_body(body)
    assert len(packed) < len(body) // 10
    assert inflate_body(packed, "gzip", limit=len(body)) == body
    assert inflate_body(body, "", limit=10) == body  # identity: the caller enforces the raw limit
    with pytest.raises(OverflowError):
        inflate_body(packed, "gzip", limit=len(body) - 1)
    with pytest.raises(ValueError, match="truncated"):
        inflate_body(packed[:-20], "gzip", limit=len(body))
    with pytest.raises(ValueError, match="not valid gzip"):
        inflate_body(b"plain text", "gzip", limit=100)
    with pytest.raises(ValueError, match="unsupported Content-Encoding 'br'"):
        inflate_body(packed, "br", limit=100)
