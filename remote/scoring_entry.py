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
  timing fields (the ``patient_id`` is checked and dropped: no answer, log or telemetry
  carries it);
- ``GET``: the service's identity (model, limits), used by clients to test a connection.

Configuration (environment):

- ``NEUROHSI_MODEL_PATH``: the model file; else the first ``*.safetensors`` under
  ``AZUREML_MODEL_DIR`` (Azure ML's convention); else ``init()`` fails and the worker
  exits, so the container never reports ready with a model nobody chose (the demo
  model is served only when ``neurohsi serve --model demo`` names it);
- ``NEUROHSI_SCORING_KEY``: when set, every ``/score`` request needs
  ``Authorization: Bearer <key>`` (401 otherwise);
- ``NEUROHSI_MAX_REQUEST_MB``: request-size limit in MB (default 64), 413 beyond it;
- ``NEUROHSI_REFERENCE_CACHE``: how many dark/white frames to keep (default 8);
- ``NEUROHSI_BODY_BUDGET_MB``: request bodies held at once per worker process (default 256),
  503 with ``Retry-After`` beyond (keeps the worker under the instance type's memory request);
- ``NEUROHSI_MAX_CONCURRENT_SCORING``: requests scored at once per worker process
  (default 2); others wait up to ``NEUROHSI_SCORING_WAIT_S`` (default 30 s), then 503.

Connection threads, socket read deadlines and the gunicorn configuration are in
:mod:`remote.scoring_gunicorn`; the checks made before anything is allocated in
:mod:`remote.scoring_guards`. Responses identify the model by name, version and
sha256 (:func:`remote.scoring_guards.public_model_identity`), never by the training
data recorded in the model file.

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

from core.capture.files import Capture, capture_from_bytes
from core.errors import CaptureError, ModelFileError, NeuroHSIError, ProfileError
from core.model.inference import classify_prepared, prepare, warm_up
from core.model.choice import resolve_model
from core.model.files import LoadedModel
from core.model.trust import summary as trust_summary
from core.model.trust import to_header
from remote.env_settings import positive_float_env
from remote.scoring_guards import (
    ByteBudget,
    ComputeSlots,
    RequestError,
    check_capture_geometry,
    public_model_identity,
    read_body,
    sensor_limit,
)
from remote.scoring_protocol import RESULT_CONTENT_TYPE, decode_request, encode_result, inflate_body

logger = logging.getLogger("neurohsi.scoring")

ENV_MODEL_PATH = "NEUROHSI_MODEL_PATH"
ENV_MODEL_DIR = "AZUREML_MODEL_DIR"
ENV_KEY = "NEUROHSI_SCORING_KEY"
ENV_MAX_REQUEST_MB = "NEUROHSI_MAX_REQUEST_MB"
ENV_REFERENCE_CACHE = "NEUROHSI_REFERENCE_CACHE"
ENV_MAX_CONCURRENT = "NEUROHSI_MAX_CONCURRENT_SCORING"
ENV_SCORING_WAIT_S = "NEUROHSI_SCORING_WAIT_S"
ENV_BODY_BUDGET_MB = "NEUROHSI_BODY_BUDGET_MB"
DEFAULT_BODY_BUDGET_MB = 256.0
DEFAULT_MAX_REQUEST_MB = 64.0
DEFAULT_REFERENCE_CACHE = 8
DEFAULT_MAX_CONCURRENT = 2
DEFAULT_SCORING_WAIT_S = 30.0
JSON_CONTENT_TYPE = "application/json"
# Parsed JSON integer lists take ~36 bytes per pixel (a 31 MB full-frame thesis request
# becomes ~250 MB of Python objects): the thesis protocol gets a tighter body limit.
MAX_JSON_BYTES = 40_000_000


class ModelNotFoundError(RuntimeError):
    """No model file is configured: the service must not start (the container stays not ready)."""


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

    __slots__ = ("model", "key", "max_request_bytes", "cache", "slots", "budget", "max_frame")

    def __init__(
        self, model: LoadedModel, key: str | None, max_request_bytes: int, cache: ReferenceCache, slots: ComputeSlots,
        budget: ByteBudget | None = None,
    ) -> None:
        self.budget = budget or ByteBudget(int(DEFAULT_BODY_BUDGET_MB * 1_000_000))
        # (rows, cols) no frame may exceed: the sensor of the model's camera.
        self.max_frame = sensor_limit(model.info.profile_id)
        self.model = model
        self.key = key
        self.max_request_bytes = max_request_bytes
        self.cache = cache
        self.slots = slots


_STATE: ServiceState | None = None


def resolve_model_path(environ: dict | None = None) -> Path:
    """The model file named by configuration (see the module docstring); never the demo model."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(ENV_MODEL_PATH)
    if explicit:
        return Path(explicit)
    model_dir = environ.get(ENV_MODEL_DIR)
    if model_dir:
        found = sorted(Path(model_dir).rglob("*.safetensors"))
        if found:
            return found[0]
        raise ModelNotFoundError(
            f"no *.safetensors model file under {ENV_MODEL_DIR}={model_dir}; register the model with the deployment"
        )
    raise ModelNotFoundError(f"no model configured: set {ENV_MODEL_PATH} or {ENV_MODEL_DIR}")


def init() -> None:
    """Load the model and settings once per worker process.

    Raises (and the inference server exits with code 3, so the container never
    becomes ready) when no model is configured or the settings are invalid.
    """
    global _STATE
    try:
        path = resolve_model_path()
    except ModelNotFoundError as exc:
        logger.critical("NeuroHSI scoring cannot start: %s", exc)
        raise
    model = resolve_model(path, allow_demo=False)
    key = os.environ.get(ENV_KEY) or None
    max_bytes = int(positive_float_env(ENV_MAX_REQUEST_MB, DEFAULT_MAX_REQUEST_MB) * 1_000_000)
    capacity = int(positive_float_env(ENV_REFERENCE_CACHE, DEFAULT_REFERENCE_CACHE))
    slots = ComputeSlots(
        int(positive_float_env(ENV_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT)),
        positive_float_env(ENV_SCORING_WAIT_S, DEFAULT_SCORING_WAIT_S),
    )
    budget = ByteBudget(int(positive_float_env(ENV_BODY_BUDGET_MB, DEFAULT_BODY_BUDGET_MB) * 1_000_000))
    _STATE = ServiceState(model, key, max_bytes, ReferenceCache(capacity), slots, budget)
    try:  # the first request must not pay for the process's first classification
        warmed = warm_up(model)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs the first request time
        logger.exception("warm-up classification failed; the first request will be slower")
    else:
        logger.info("NeuroHSI scoring: warmed up in %s", "-" if warmed is None else f"{1000 * warmed:.0f} ms")
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
        # A body left unread is drained by gunicorn (bounded to 5 s) before the connection is reused.
        return _json_response({"error": exc.message, **exc.extra}, exc.status, exc.headers)
    except Exception:  # the service must keep serving and never leak internals
        logger.exception("unexpected error while scoring")
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
        with state.budget.hold() as hold:
            body = read_body(request, state.max_request_bytes, inflate_body, hold)
            with state.slots.slot():
                return _score_binary(state, body, request.content_type, start)
    if mimetype == JSON_CONTENT_TYPE:
        with state.budget.hold() as hold:
            body = read_body(request, min(state.max_request_bytes, MAX_JSON_BYTES), inflate_body, hold)
            with state.slots.slot():
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


def _service_info(state: ServiceState) -> dict:
    return {
        "service": "neurohsi-scoring",
        "model": _model_identity(state),
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
        capture = capture_from_bytes(req.raw, references["dark"], references["white"], max_shape=state.max_frame)
    except CaptureError as exc:
        raise RequestError(400, _client_message(exc)) from None
    check_capture_geometry(capture.metadata, capture.raw.shape, state.model.info.n_bands)
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
    header = {
        "model": _model_identity(state),
        "timings_s": timings,
        "profile_id": result.cube.profile_id,
        **to_header(result),  # quality report and out-of-distribution mask: the client decides what to show
    }
    payload = encode_result(
        header,
        result.labels,
        rgb=result.rgb if req.params.return_rgb else None,
        probabilities=result.probabilities if req.params.return_probabilities else None,
    )
    return AMLResponse(payload, 200, {"Content-Type": RESULT_CONTENT_TYPE})


def _model_identity(state: ServiceState) -> dict:
    return public_model_identity(state.model.info)


def _reject_number(text: str):
    raise RequestError(400, f"frames must hold integers, found {text!r}")


def _frame_from_lists(value, name: str, max_shape: tuple[int, int]) -> np.ndarray:
    """A uint16 (H, W) frame from a nested list of integers, validated."""
    if not isinstance(value, list) or not value:
        raise RequestError(400, f"{name} must be a non-empty 2-D list of integers")
    try:
        array = np.array(value)
    except (ValueError, OverflowError, TypeError, RecursionError):
        raise RequestError(400, f"{name} must be a rectangular 2-D list of integers") from None
    if array.ndim != 2 or array.size == 0:
        raise RequestError(400, f"{name} must be a 2-D list of integers, got {array.ndim} dimension(s)")
    if array.shape[0] > max_shape[0] or array.shape[1] > max_shape[1]:
        raise RequestError(
            400, f"{name} is {array.shape[0]}x{array.shape[1]}, larger than the sensor ({max_shape[0]}x{max_shape[1]})"
        )
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
    except RecursionError:
        raise RequestError(400, "body is not valid JSON (nested too deeply)") from None
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
    raw = _frame_from_lists(obj["raw_image"], "raw_image", state.max_frame)
    white = _frame_from_lists(obj["white_ref"], "white_ref", state.max_frame)
    dark = _frame_from_lists(obj["black_ref"], "black_ref", state.max_frame)
    for name, frame in (("white_ref", white), ("black_ref", dark)):
        if frame.shape != raw.shape:
            raise RequestError(400, f"{name} shape {frame.shape} differs from raw_image shape {raw.shape}")
    # The patient id is accepted (thesis clients send it) and dropped here: it never names the
    # capture, reaches a log or telemetry, or comes back in the answer (issue 24).
    capture = Capture(raw, dark, white, None, capture_id="capture")
    t_parsed = time.perf_counter()
    result = _classify(state, capture, profile)
    answer = {
        "classification_map": result.labels.tolist(),
        "time_parsing_data": t_parsed - start,
        "time_preProcessing_data": result.timings_s.get("preprocess", 0.0),
        # Dense inference builds no patch batches: the whole cube goes through the network at once.
        "time_preparing_batches": 0.0,
        "time_predict_cMap": result.timings_s.get("infer", 0.0),
        "class_ids": list(info.class_ids),
        "class_names": list(info.class_names),
        "model": {"name": info.name, "version": info.version, "sha256": info.sha256},
        "time_receiving_data": t_received - start,
        **trust_summary(result),
    }
    return _json_response(answer, 200)


def _json_response(obj: dict, status: int, extra_headers: dict | None = None):
    headers = {"Content-Type": JSON_CONTENT_TYPE, **(extra_headers or {})}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return AMLResponse(json.dumps(obj, separators=(",", ":")), status, headers)
