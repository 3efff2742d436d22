"""NeuroHSI binary scoring protocol, shared by the scoring service and its client.

Request (``multipart/form-data``, built and parsed here so both ends agree byte
for byte and the client knows exactly what goes on the wire):

- ``raw``: the original TIFF bytes of the raw frame (Ximea metadata preserved);
- ``dark``, ``white``: the references' TIFF bytes, left out when the client
  believes the service already caches them (it then sends only their sha256);
- ``params``: JSON ``{"dark_sha256", "white_sha256", "return_probabilities",
  "return_rgb", "profile"}``.

Response (``application/x-neurohsi-result``)::

    magic b"NHSR" | version u16 | flags u16 | header length u32 | header JSON (UTF-8) | payload

all little-endian. The header JSON holds ``shape`` [H, W], ``n_classes``, the
model identity, the service's timings (seconds) and which arrays the payload
carries. The payload (zlib-compressed when flag bit 0 is set) is the label map
(uint8, H*W bytes, exact), then the synthetic RGB when present (uint8, planar:
3 planes of H*W), then per-class probabilities when present (float16, planar
(C, H, W) and byte-shuffled: all low bytes, then all high bytes). Planes and the
shuffle put similar bytes together, so the compressed answer is ~25% smaller.

A request body may be sent with ``Content-Encoding: gzip`` (:func:`gzip_body`);
the service inflates it (within its size limit) before parsing.

Every decoder raises ``ValueError`` with a one-line message on truncated,
garbage or inconsistent input.
"""
from __future__ import annotations

import json
import re
import secrets
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULT_CONTENT_TYPE = "application/x-neurohsi-result"
MULTIPART_CONTENT_TYPE = "multipart/form-data"
MAGIC = b"NHSR"
VERSION = 1
FLAG_ZLIB = 1
_PREFIX = struct.Struct("<4sHHI")  # magic, version, flags, header length
_MAX_HEADER_BYTES = 1 << 20
# Upper bound on the decompressed payload: a full 2048 x 2048 map with RGB and 16 classes.
_MAX_PAYLOAD_BYTES = 2048 * 2048 * (1 + 3 + 2 * 16)
_PART_NAMES = ("raw", "dark", "white", "params")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The params object has five short fields; anything larger is not a NeuroHSI client.
_MAX_PARAMS_BYTES = 16 * 1024


@dataclass(frozen=True)
class ScoringParams:
    """The JSON ``params`` part of a binary scoring request."""

    dark_sha256: str | None = None
    white_sha256: str | None = None
    return_probabilities: bool = True
    return_rgb: bool = True
    profile: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "dark_sha256": self.dark_sha256,
                "white_sha256": self.white_sha256,
                "return_probabilities": self.return_probabilities,
                "return_rgb": self.return_rgb,
                "profile": self.profile,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "ScoringParams":
        """Parse and validate the ``params`` part; ``ValueError`` names the bad field."""
        if len(data) > _MAX_PARAMS_BYTES:
            raise ValueError(f"params part is {len(data)} bytes; at most {_MAX_PARAMS_BYTES} are accepted")
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"params part is not valid JSON ({exc})") from None
        except RecursionError:
            raise ValueError("params part is not valid JSON (nested too deeply)") from None
        if not isinstance(obj, dict):
            raise ValueError("params part must be a JSON object")
        unknown = set(obj) - {"dark_sha256", "white_sha256", "return_probabilities", "return_rgb", "profile"}
        if unknown:
            raise ValueError(f"params has unknown field(s): {', '.join(sorted(unknown))}")
        for name in ("dark_sha256", "white_sha256"):
            value = obj.get(name)
            if value is not None and (not isinstance(value, str) or not _SHA256.match(value)):
                raise ValueError(f"params.{name} must be 64 lowercase hex digits or null")
        for name in ("return_probabilities", "return_rgb"):
            if name in obj and not isinstance(obj[name], bool):
                raise ValueError(f"params.{name} must be true or false")
        profile = obj.get("profile")
        if profile is not None and not isinstance(profile, str):
            raise ValueError("params.profile must be a string or null")
        return cls(
            dark_sha256=obj.get("dark_sha256"),
            white_sha256=obj.get("white_sha256"),
            return_probabilities=obj.get("return_probabilities", True),
            return_rgb=obj.get("return_rgb", True),
            profile=profile,
        )


@dataclass(frozen=True)
class ScoringRequest:
    """A decoded binary request: TIFF bytes (references ``None`` when not sent) and parameters."""

    raw: bytes
    dark: bytes | None
    white: bytes | None
    params: ScoringParams = field(default_factory=ScoringParams)


def encode_request(
    raw: bytes, dark: bytes | None, white: bytes | None, params: ScoringParams, *, boundary: str | None = None
) -> tuple[bytes, str]:
    """The multipart body and its ``Content-Type`` header value."""
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise ValueError("raw must be non-empty TIFF bytes")
    boundary = boundary or f"neurohsi-{secrets.token_hex(16)}"
    delimiter = f"--{boundary}".encode()
    chunks: list[bytes] = []
    for name, data, ctype in (
        ("raw", raw, "image/tiff"),
        ("dark", dark, "image/tiff"),
        ("white", white, "image/tiff"),
        ("params", params.to_json(), "application/json"),
    ):
        if data is None:
            continue
        chunks += [
            delimiter,
            b"\r\n",
            f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'.encode(),
            f"Content-Type: {ctype}\r\n\r\n".encode(),
            bytes(data),
            b"\r\n",
        ]
    chunks += [delimiter, b"--\r\n"]
    return b"".join(chunks), f"{MULTIPART_CONTENT_TYPE}; boundary={boundary}"


def gzip_body(body: bytes, *, level: int = 1) -> bytes:
    """``body`` gzip-compressed for ``Content-Encoding: gzip`` (level 1: ~60 ms per 4.5 MB frame, ~35% smaller)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
    return compressor.compress(body) + compressor.flush()


def inflate_body(body: bytes, encoding: str, *, limit: int) -> bytes:
    """Undo ``Content-Encoding`` ``gzip`` or ``deflate`` (zlib), refusing more than ``limit`` bytes of output.

    ``ValueError`` for an unknown encoding or corrupt data; :class:`OverflowError`
    when the inflated body would exceed ``limit`` (a compression bomb or an oversize request).
    """
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip)")
    inflater = zlib.decompressobj(47)  # wbits 47: gzip or zlib header, detected
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"request body is not valid {encoding} data ({exc})") from None
    if len(data) > limit:
        raise OverflowError(f"inflated request body exceeds {limit} bytes")
    if not inflater.eof:
        raise ValueError(f"request body is truncated {encoding} data")
    return data


def boundary_from_content_type(content_type: str) -> str:
    """The boundary parameter of a ``multipart/form-data`` content type."""
    main, _, rest = (content_type or "").partition(";")
    if main.strip().lower() != MULTIPART_CONTENT_TYPE:
        raise ValueError(f"expected {MULTIPART_CONTENT_TYPE}, got {main.strip() or 'no content type'}")
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', rest, re.IGNORECASE)
    if not match:
        raise ValueError("multipart content type has no boundary")
    boundary = match.group(1) or match.group(2)
    if len(boundary) > 70:
        raise ValueError("multipart boundary longer than 70 characters")
    return boundary


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """Parts of a ``multipart/form-data`` body by field name (RFC 7578, no nesting).

    Raises ``ValueError`` for a missing boundary, missing closing delimiter,
    parts without a name, duplicate or unknown names.
    """
    boundary = boundary_from_content_type(content_type).encode()
    body = memoryview(body).tobytes() if not isinstance(body, bytes) else body
    opening = b"--" + boundary
    separator = b"\r\n--" + boundary
    if body.startswith(opening):
        pos = len(opening)
    else:
        first = body.find(separator)
        if first < 0:
            raise ValueError("malformed multipart body: boundary not found")
        pos = first + len(separator)
    parts: dict[str, bytes] = {}
    while True:
        if body[pos : pos + 2] == b"--":
            return parts
        if body[pos : pos + 2] != b"\r\n":
            raise ValueError("malformed multipart body: bad delimiter line")
        header_end = body.find(b"\r\n\r\n", pos + 2)
        if header_end < 0:
            raise ValueError("malformed multipart body: part headers not terminated")
        headers = body[pos + 2 : header_end].decode("latin-1")
        end = body.find(separator, header_end + 4)
        if end < 0:
            raise ValueError("malformed multipart body: closing boundary missing (truncated?)")
        name_match = re.search(r'content-disposition:[^\r\n]*?\bname="([^"]*)"', headers, re.IGNORECASE)
        if not name_match:
            raise ValueError("malformed multipart body: a part has no name")
        name = name_match.group(1)
        if name not in _PART_NAMES:
            raise ValueError(f"unknown multipart part {name!r} (expected {', '.join(_PART_NAMES)})")
        if name in parts:
            raise ValueError(f"multipart part {name!r} appears twice")
        parts[name] = body[header_end + 4 : end]
        pos = end + len(separator)


def decode_request(body: bytes, content_type: str) -> ScoringRequest:
    """Parse a binary scoring request; ``ValueError`` names what is missing or malformed."""
    parts = parse_multipart(body, content_type)
    if not parts.get("raw"):
        raise ValueError("request has no 'raw' part")
    if "params" not in parts:
        raise ValueError("request has no 'params' part")
    params = ScoringParams.from_json(parts["params"])
    return ScoringRequest(parts["raw"], parts.get("dark") or None, parts.get("white") or None, params)


@dataclass(frozen=True)
class DecodedResult:
    """A decoded scoring response."""

    header: dict[str, Any]
    labels: np.ndarray  # uint8 (H, W)
    rgb: np.ndarray | None  # uint8 (H, W, 3)
    probabilities: np.ndarray | None  # float32 (H, W, C), from float16 on the wire


def encode_result(
    header: dict[str, Any],
    labels: np.ndarray,
    *,
    rgb: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    compress: bool = True,
) -> bytes:
    """The binary response for a label map (uint8 (H, W)), optional RGB and probabilities (H, W, C)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 (H, W), got {labels.dtype} {labels.shape}")
    height, width = labels.shape
    sections = [np.ascontiguousarray(labels).tobytes()]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 {(height, width, 3)}, got {rgb.dtype} {rgb.shape}")
        sections.append(np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes())
    n_classes = None
    if probabilities is not None:
        probabilities = np.asarray(probabilities)
        if probabilities.ndim != 3 or probabilities.shape[:2] != (height, width):
            raise ValueError(f"probabilities must be (H, W, C) with (H, W) = {(height, width)}, got {probabilities.shape}")
        n_classes = probabilities.shape[2]
        planar = np.ascontiguousarray(probabilities.transpose(2, 0, 1), dtype="<f2")
        sections.append(np.ascontiguousarray(planar.view(np.uint8).reshape(-1, 2).T).tobytes())
    full_header = {
        **header,
        "shape": [height, width],
        "labels_dtype": "uint8",
        "rgb": rgb is not None,
        "probabilities_dtype": "float16" if probabilities is not None else None,
        "n_classes": n_classes,
    }
    header_bytes = json.dumps(full_header, separators=(",", ":")).encode()
    payload = b"".join(sections)
    flags = 0
    if compress:
        # Level 1: label maps shrink ~50x for ~1 ms per 100 kB; higher levels buy little.
        payload = zlib.compress(payload, 1)
        flags |= FLAG_ZLIB
    return _PREFIX.pack(MAGIC, VERSION, flags, len(header_bytes)) + header_bytes + payload


def decode_result(body: bytes) -> DecodedResult:
    """Parse a binary response; ``ValueError`` on wrong magic, version, truncation or inconsistent sizes."""
    if len(body) < _PREFIX.size:
        raise ValueError(f"result too short ({len(body)} bytes): truncated or not a NeuroHSI result")
    magic, version, flags, header_len = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise ValueError("not a NeuroHSI result (bad magic bytes)")
    if version != VERSION:
        raise ValueError(f"unsupported NeuroHSI result version {version} (this client reads {VERSION})")
    if header_len > _MAX_HEADER_BYTES or _PREFIX.size + header_len > len(body):
        raise ValueError("result header truncated")
    try:
        header = json.loads(body[_PREFIX.size : _PREFIX.size + header_len])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"result header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError("result header must be a JSON object")
    payload = body[_PREFIX.size + header_len :]
    if flags & FLAG_ZLIB:
        inflater = zlib.decompressobj()
        try:
            payload = inflater.decompress(payload, _MAX_PAYLOAD_BYTES + 1)
        except zlib.error as exc:
            raise ValueError(f"result payload is corrupt ({exc})") from None
        if not inflater.eof:
            raise ValueError("result payload truncated or too large")
    try:
        height, width = (int(v) for v in header["shape"])
        has_rgb = bool(header.get("rgb"))
        prob_dtype = header.get("probabilities_dtype")
        n_classes = int(header["n_classes"]) if prob_dtype is not None else 0
    except (KeyError, TypeError, ValueError):
        raise ValueError("result header lacks a valid shape / n_classes") from None
    if height <= 0 or width <= 0 or n_classes < 0 or prob_dtype not in (None, "float16"):
        raise ValueError(f"result header has invalid shape {header.get('shape')} or dtype {prob_dtype}")
    pixels = height * width
    expected = pixels + (3 * pixels if has_rgb else 0) + 2 * pixels * n_classes
    if len(payload) != expected:
        raise ValueError(f"result payload has {len(payload)} bytes, expected {expected} for shape {height}x{width}")
    labels = np.frombuffer(payload, np.uint8, pixels).reshape(height, width).copy()
    offset = pixels
    rgb = None
    if has_rgb:
        planes = np.frombuffer(payload, np.uint8, 3 * pixels, offset).reshape(3, height, width)
        rgb = np.ascontiguousarray(planes.transpose(1, 2, 0))
        offset += 3 * pixels
    probabilities = None
    if prob_dtype is not None:
        shuffled = np.frombuffer(payload, np.uint8, 2 * pixels * n_classes, offset).reshape(2, -1)
        planar = np.ascontiguousarray(shuffled.T).view("<f2").reshape(n_classes, height, width)
        probabilities = np.ascontiguousarray(planar.transpose(1, 2, 0), dtype=np.float32)
    return DecodedResult(header, labels, rgb, probabilities)


def model_info_from(data: dict):
    """A result header's ``model`` dict as :class:`core.model.files.ModelInfo` (unknown keys dropped)."""
    from dataclasses import fields

    from core.model.files import ModelInfo

    known = {f.name for f in fields(ModelInfo)}
    values = {k: v for k, v in data.items() if k in known}
    values["class_ids"] = tuple(values.get("class_ids", ()))
    values["class_names"] = tuple(values.get("class_names", ()))
    return ModelInfo(**values)
