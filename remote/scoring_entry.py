"""Azure ML / AKS scoring entry script for NeuroHSI (``init()`` and ``run(request)``).

Served by ``azureml-inference-server-http`` (``azmlinfsrv --entry_script
remote/scoring_entry.py``) in the scoring image, and locally by
:mod:`remote.scoring_server` bound to 127.0.0.1. ``run`` receives the raw Flask
request (``@rawhttp``) and routes by content type:

- ``multipart/form-data``: the NeuroHSI binary protocol
  (:mod:`remote.scoring_protocol`), answered with ``application/x-neurohsi-result``;
- ``application/json``: the thesis protocol (``raw_image``, ``white_ref``,
  ``black_ref`` as nested integer lists, ``patch_size``, ``batch_size``,
  ``patient_id``), answered with JSON ``classification_map`` and the thesis's
  timing fields;
- ``GET``: the service's identity (model, limits), used by clients to test a connection.

Configuration (environment):

- ``NEUROHSI_MODEL_PATH``: the model file; else the first ``*.safetensors`` under
  ``AZUREML_MODEL_DIR`` (Azure ML's convention); else the demo model;
- ``NEUROHSI_SCORING_KEY``: when set, every ``/score`` request needs
  ``Authorization: Bearer <key>`` (401 otherwise);
- ``NEUROHSI_MAX_REQUEST_MB``: request-size limit in MB (default 64), 413 beyond it;
- ``NEUROHSI_REFERENCE_CACHE``: how many dark/white frames to keep (default 8).

Every bad request gets a 4xx with JSON ``{"error": ...}``; an unexpected failure
gets a 500 with a generic message (details only in the service log). Dark and
white references are cached by the sha256 of their TIFF bytes, per worker process.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse

from core.capture_io import Capture, capture_from_bytes
from core.errors import CaptureError, ModelFileError, NeuroHSIError, ProfileError
from core.inference import classify_prepared, prepare
from core.model_choice import resolve_model, resolve_model_path as choose_model_path
from core.model_file import LoadedModel
from remote.scoring_protocol import RESULT_CONTENT_TYPE, decode_request, encode_result, inflate_body

logger = logging.getLogger("neurohsi.scoring")

ENV_MODEL_PATH = "NEUROHSI_MODEL_PATH"
ENV_MODEL_DIR = "AZUREML_MODEL_DIR"
ENV_KEY = "NEUROHSI_SCORING_KEY"
ENV_MAX_REQUEST_MB = "NEUROHSI_MAX_REQUEST_MB"
ENV_REFERENCE_CACHE = "NEUROHSI_REFERENCE_CACHE"
DEFAULT_MAX_REQUEST_MB = 64.0
DEFAULT_REFERENCE_CACHE = 8
JSON_CONTENT_TYPE = "application/json"
# Bodies of rejected requests are read and dropped up to this many bytes, so the
# client sees our 4xx instead of a connection reset from unread data.
_DRAIN_LIMIT_BYTES = 512 * 1024 * 1024
_CHUNK = 1 << 20


class RequestError(Exception):
    """A bad request: HTTP ``status`` and a one-line message for the client."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class ReferenceCache:
    """Bounded LRU of reference TIFF bytes keyed by their sha256 (thread-safe)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"reference cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha256: str) -> bytes | None:
        with self._lock:
            data = self._items.get(sha256)
            if data is not None:
                self._items.move_to_end(sha256)
            return data

    def put(self, sha256: str, data: bytes) -> None:
        with self._lock:
            self._items[sha256] = data
            self._items.move_to_end(sha256)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class ServiceState:
    """What ``init()`` loads once per worker process.

    A plain class, not a dataclass: the inference server executes this file
    without registering it in ``sys.modules``, which ``dataclasses`` needs.
    """

    __slots__ = ("model", "key", "max_request_bytes", "cache")

    def __init__(self, model: LoadedModel, key: str | None, max_request_bytes: int, cache: ReferenceCache) -> None:
        self.model = model
        self.key = key
        self.max_request_bytes = max_request_bytes
        self.cache = cache


_STATE: ServiceState | None = None


def resolve_model_path(environ: dict | None = None) -> Path:
    """The model file named by configuration (see the module docstring), by :mod:`core.model_choice`'s rule."""
    environ = os.environ if environ is None else environ
    configured = None
    model_dir = environ.get(ENV_MODEL_DIR)
    if model_dir:
        found = sorted(Path(model_dir).rglob("*.safetensors"))
        if found:
            configured = found[0]
        else:
            logger.warning("no *.safetensors under %s=%s; using the demo model", ENV_MODEL_DIR, model_dir)
    return choose_model_path(environ.get(ENV_MODEL_PATH) or None, configured, allow_demo=True)


def _float_env(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {text!r}")
    return value


def init() -> None:
    """Load the model and settings once per worker process."""
    global _STATE
    model = resolve_model(resolve_model_path())
    key = os.environ.get(ENV_KEY) or None
    max_bytes = int(_float_env(ENV_MAX_REQUEST_MB, DEFAULT_MAX_REQUEST_MB) * 1_000_000)
    capacity = int(_float_env(ENV_REFERENCE_CACHE, DEFAULT_REFERENCE_CACHE))
    _STATE = ServiceState(model, key, max_bytes, ReferenceCache(capacity))
    logger.info(
        "NeuroHSI scoring: model %s, key %s, request limit %d bytes",
        model.info.label,
        "required" if key else "not required",
        max_bytes,
    )


@rawhttp
def run(request):
    """Score one request (the raw Flask request); always answers with an ``AMLResponse``."""
    try:
        return _dispatch(request)
    except RequestError as exc:
        _drain(request)
        return _json_response({"error": exc.message, **exc.extra}, exc.status)
    except Exception:  # the service must keep serving and never leak internals
        logger.exception("unexpected error while scoring")
        _drain(request)
        return _json_response({"error": "internal error while scoring; see the service log"}, 500)


def _dispatch(request):
    state = _STATE
    if state is None:
        raise RuntimeError("init() has not run")
    _check_key(request, state.key)
    if request.method == "GET":
        return _json_response(_service_info(state), 200)
    if request.method != "POST":
        raise RequestError(405, f"method {request.method} not allowed (use POST to score, GET for service info)")
    start = time.perf_counter()
    mimetype = (request.mimetype or "").lower()
    if mimetype == "multipart/form-data":
        body = _read_body(request, state.max_request_bytes)
        return _score_binary(state, body, request.content_type, start)
    if mimetype == JSON_CONTENT_TYPE:
        body = _read_body(request, state.max_request_bytes)
        return _score_thesis_json(state, body, start)
    raise RequestError(
        415, f"unsupported content type {mimetype or '(none)'}: send multipart/form-data or application/json"
    )


def _check_key(request, key: str | None) -> None:
    if key is None:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise RequestError(401, "missing endpoint key: send 'Authorization: Bearer <key>'")
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise RequestError(401, "endpoint key rejected")


def _read_body(request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes (413 beyond it, checked before reading when declared)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestError(413, f"request too large: {declared} bytes, the limit is {limit} bytes")
    chunks, total = [], 0
    while True:
        chunk = request.stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise RequestError(413, f"request too large: over {limit} bytes, the limit is {limit} bytes")
        chunks.append(chunk)
    if not total:
        raise RequestError(400, "empty request body")
    body = b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "")
    try:
        return inflate_body(body, encoding, limit=limit)
    except OverflowError:
        raise RequestError(413, f"request too large: inflated body over {limit} bytes, the limit is {limit} bytes") from None
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None


def _drain(request) -> None:
    """Read and drop what is left of the body (bounded), so the client gets the answer, not a reset."""
    try:
        remaining = _DRAIN_LIMIT_BYTES
        while remaining > 0:
            chunk = request.stream.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
    except Exception:  # the client may already be gone; nothing to do
        logger.debug("could not drain the request body", exc_info=True)


def _service_info(state: ServiceState) -> dict:
    return {
        "service": "neurohsi-scoring",
        "model": state.model.info.to_dict(),
        "max_request_bytes": state.max_request_bytes,
        "protocols": ["multipart/form-data", JSON_CONTENT_TYPE],
        "result_content_type": RESULT_CONTENT_TYPE,
        "reference_cache": {"capacity": state.cache.capacity, "held": len(state.cache)},
    }


def _client_message(exc: NeuroHSIError) -> str:
    """The error's message without server file paths (frame names "raw"/"dark"/"white" stay)."""
    path = getattr(exc, "path", None)
    problem = getattr(exc, "problem", None)
    if problem is not None and path not in (None, "raw", "dark", "white", "raw_image", "black_ref", "white_ref"):
        return problem
    return str(exc)


def _classify(state: ServiceState, capture: Capture, profile: str | None):
    try:
        return classify_prepared(prepare(capture, profile_name=profile), state.model)
    except CaptureError as exc:
        raise RequestError(400, _client_message(exc)) from None
    except (ModelFileError, ProfileError) as exc:
        # The capture is readable but does not fit this service's model or any known camera profile.
        raise RequestError(422, _client_message(exc)) from None


def _score_binary(state: ServiceState, body: bytes, content_type: str, start: float):
    t_received = time.perf_counter()
    try:
        req = decode_request(body, content_type)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    references, missing = {}, []
    for kind, data, claimed in (
        ("dark", req.dark, req.params.dark_sha256),
        ("white", req.white, req.params.white_sha256),
    ):
        if data is not None:
            digest = hashlib.sha256(data).hexdigest()
            if claimed is not None and claimed != digest:
                raise RequestError(400, f"the {kind} part does not match params.{kind}_sha256")
            references[kind] = data
            # Cached only once the frame proves to be a readable TIFF (below).
        elif claimed is None:
            raise RequestError(400, f"request has neither a '{kind}' part nor params.{kind}_sha256")
        else:
            cached = state.cache.get(claimed)
            if cached is None:
                missing.append(kind)
            else:
                references[kind] = cached
    if missing:
        raise RequestError(
            409,
            f"the service does not hold the {' and '.join(missing)} reference(s) with the given sha256; send them",
            missing=missing,
        )
    t_parsed = time.perf_counter()
    try:
        capture = capture_from_bytes(req.raw, references["dark"], references["white"])
    except CaptureError as exc:
        raise RequestError(400, _client_message(exc)) from None
    for kind, data in (("dark", req.dark), ("white", req.white)):
        if data is not None:
            state.cache.put(hashlib.sha256(data).hexdigest(), data)
    t_decoded = time.perf_counter()
    result = _classify(state, capture, req.params.profile)
    end = time.perf_counter()
    timings = {
        "receive": t_received - start,
        "parse": t_parsed - t_received,
        "decode": t_decoded - t_parsed,
        **{k: v for k, v in result.timings_s.items() if k != "total"},
        "total": end - start,
    }
    header = {"model": _model_identity(state), "timings_s": timings, "profile_id": result.cube.profile_id}
    payload = encode_result(
        header,
        result.labels,
        rgb=result.rgb if req.params.return_rgb else None,
        probabilities=result.probabilities if req.params.return_probabilities else None,
    )
    return AMLResponse(payload, 200, {"Content-Type": RESULT_CONTENT_TYPE})


def _model_identity(state: ServiceState) -> dict:
    return state.model.info.to_dict()


def _reject_number(text: str):
    raise RequestError(400, f"frames must hold integers, found {text!r}")


def _frame_from_lists(value, name: str) -> np.ndarray:
    """A uint16 (H, W) frame from a nested list of integers, validated."""
    if not isinstance(value, list) or not value:
        raise RequestError(400, f"{name} must be a non-empty 2-D list of integers")
    try:
        array = np.array(value)
    except (ValueError, OverflowError):
        raise RequestError(400, f"{name} must be a rectangular 2-D list of integers") from None
    if array.ndim != 2 or array.size == 0:
        raise RequestError(400, f"{name} must be a 2-D list of integers, got {array.ndim} dimension(s)")
    if array.dtype.kind not in "iu":
        raise RequestError(400, f"{name} must hold integers only, got {array.dtype.kind!r} values")
    if array.min() < 0 or array.max() > 65535:
        raise RequestError(400, f"{name} values must be in 0..65535")
    return array.astype(np.uint16)


def _score_thesis_json(state: ServiceState, body: bytes, start: float):
    t_received = time.perf_counter()
    try:
        # Floats and NaN/Infinity are refused while parsing: pixel values are integers.
        obj = json.loads(body, parse_float=_reject_number, parse_constant=_reject_number)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, f"body is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "body must be a JSON object")
    missing = [k for k in ("raw_image", "white_ref", "black_ref") if k not in obj]
    if missing:
        raise RequestError(400, f"missing field(s): {', '.join(missing)}", missing=missing)
    info = state.model.info
    patch_size = obj.get("patch_size", info.patch_size)
    if not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size != info.patch_size:
        raise RequestError(400, f"patch_size must be {info.patch_size} for this model, got {patch_size!r}")
    batch_size = obj.get("batch_size", 1)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise RequestError(400, f"batch_size must be a positive integer, got {batch_size!r}")
    patient_id = obj.get("patient_id")
    if patient_id is not None and not isinstance(patient_id, (str, int)):
        raise RequestError(400, "patient_id must be a string or integer")
    profile = obj.get("profile")
    if profile is not None and not isinstance(profile, str):
        raise RequestError(400, "profile must be a string")
    raw = _frame_from_lists(obj["raw_image"], "raw_image")
    white = _frame_from_lists(obj["white_ref"], "white_ref")
    dark = _frame_from_lists(obj["black_ref"], "black_ref")
    for name, frame in (("white_ref", white), ("black_ref", dark)):
        if frame.shape != raw.shape:
            raise RequestError(400, f"{name} shape {frame.shape} differs from raw_image shape {raw.shape}")
    capture = Capture(raw, dark, white, None, capture_id=str(patient_id or "capture"))
    t_parsed = time.perf_counter()
    result = _classify(state, capture, profile)
    answer = {
        "classification_map": result.labels.tolist(),
        "patient_id": patient_id,
        "time_parsing_data": t_parsed - start,
        "time_preProcessing_data": result.timings_s.get("preprocess", 0.0),
        # Dense inference builds no patch batches: the whole cube goes through the network at once.
        "time_preparing_batches": 0.0,
        "time_predict_cMap": result.timings_s.get("infer", 0.0),
        "class_ids": list(info.class_ids),
        "class_names": list(info.class_names),
        "model": {"name": info.name, "version": info.version, "sha256": info.sha256},
        "time_receiving_data": t_received - start,
    }
    return _json_response(answer, 200)


def _json_response(obj: dict, status: int):
    headers = {"Content-Type": JSON_CONTENT_TYPE}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return AMLResponse(json.dumps(obj, separators=(",", ":")), status, headers)
