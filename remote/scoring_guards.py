"""What the scoring service checks before it spends memory or CPU on a request.

Used by the entry script (:mod:`remote.scoring_entry`). Every check here runs on
request metadata (headers, TIFF headers, Ximea XML) before anything sized by that
metadata is allocated, and turns a bad value into :class:`RequestError` (an HTTP 4xx
with a one-line message), never a 500 or gigabytes of memory:

- :func:`read_body`: ``Content-Length`` over the limit is refused (413) before a byte
  of the body is read; a body that stops arriving is refused with 408 (the socket read
  deadlines come from :mod:`remote.scoring_gunicorn`); compressed bodies inflate within
  the same limit.
- :func:`check_capture_geometry`: the mosaic pattern and filter area claimed by the
  raw frame's metadata must fit the frame and give the model's band count; otherwise
  the camera profile would allocate a (B, B) correction matrix for any B the request
  claims (a 150 x 150 pattern: B = 22,500, 2 GB).
- :func:`sensor_limit`: no frame may be larger than the sensor of the model's camera
  (decompressed sizes are bounded by it, checked on the TIFF headers before decoding);
- :class:`ByteBudget`: the request bodies held at once by one worker process are bounded
  together (503 with ``Retry-After`` beyond), so the worker stays under the instance
  type's memory request however many clients send at once;
- :class:`ComputeSlots`: at most N requests compute at once per worker process; the
  others wait up to a bound and then get 503 with ``Retry-After``.
- :func:`public_model_identity`: the model fields a response may carry (never the
  training data ids or paths recorded in the model file).
"""
from __future__ import annotations

import contextlib
import threading

from core.capture.metadata import CaptureMetadata
from core.model.files import ModelInfo

try:  # the server's HTTP parser raises these while the body is read (gunicorn runs the service on Linux)
    from gunicorn.http.errors import ParseException as _HTTP_PARSE_ERRORS
except ImportError:  # pragma: no cover - gunicorn is not installed on Windows desktops
    _HTTP_PARSE_ERRORS = ()

_CHUNK = 1 << 20
# A mosaic wider or taller than this is not a snapshot camera we know of (Ximea's are
# 4 x 4 and 5 x 5); refusing it early bounds every size derived from the pattern.
MAX_PATTERN_SIDE = 16
# Fields of ModelInfo that identify the model and state its contract; "training" and
# "metrics" are left out: they name datasets, capture ids and paths.
PUBLIC_MODEL_FIELDS = (
    "name", "version", "sha256", "format_version", "architecture", "patch_size", "n_bands",
    "padding", "class_ids", "class_names", "profile_id", "created",
)


class RequestError(Exception):
    """A bad request: HTTP ``status``, a one-line message for the client, extra JSON fields, extra headers."""

    def __init__(self, status: int, message: str, *, headers: dict | None = None, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra
        self.headers = headers or {}


class ByteBudget:
    """Bytes of request bodies held at once in one worker process, at most ``capacity`` (thread-safe).

    ``with budget.hold() as hold: hold.add(n)`` counts ``n`` more bytes for this request
    (503 with ``Retry-After`` when the budget would be exceeded) and gives them all back at
    the end of the request.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"byte budget must be >= 1, got {capacity}")
        self.capacity = capacity
        self.used = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self):
        hold = _Hold(self)
        try:
            yield hold
        finally:
            with self._lock:
                self.used -= hold.bytes

    def _add(self, hold: "_Hold", n: int) -> None:
        with self._lock:
            if self.used + n > self.capacity:
                raise RequestError(
                    503, "the service is receiving too much at once; retry shortly", headers={"Retry-After": "2"}
                )
            self.used += n
            hold.bytes += n


class _Hold:
    __slots__ = ("budget", "bytes")

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def add(self, n: int) -> None:
        self.budget._add(self, n)


def sensor_limit(profile_id: str | None) -> tuple[int, int]:
    """The largest frame (rows, cols) a request may carry: the sensor of the model's camera profile,
    or the largest built-in sensor when the model names a profile derived from frame metadata."""
    from core.capture.camera_profiles import list_profiles, load_profile

    if profile_id in list_profiles():
        return tuple(load_profile(profile_id).sensor_shape)
    shapes = [load_profile(name).sensor_shape for name in list_profiles()]
    return max(s[0] for s in shapes), max(s[1] for s in shapes)


def read_body(request, limit: int, inflate, hold: _Hold | None = None) -> bytes:
    """The request body, at most ``limit`` bytes after ``inflate(body, encoding, limit=...)``.

    413 at once when ``Content-Length`` declares more than ``limit`` (nothing is read);
    413 as soon as an undeclared (chunked) body passes ``limit``; 408 when the client
    stops sending before the body is complete; 400 for an empty body or a malformed
    chunked body; 503 when ``hold`` (of a :class:`ByteBudget`) has no room for it.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestError(413, f"request too large: {declared} bytes, the limit is {limit} bytes")
    chunks, total = [], 0
    try:
        while True:
            chunk = request.stream.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if hold is not None:
                hold.add(len(chunk))
            if total > limit:
                raise RequestError(413, f"request too large: over {limit} bytes, the limit is {limit} bytes")
            chunks.append(chunk)
    except OSError as exc:  # TimeoutError from the socket read deadline, or the client went away
        raise RequestError(408, f"request body not received in time ({exc or 'read timed out'}); send it again") from None
    except _HTTP_PARSE_ERRORS as exc:  # a malformed chunked body (bad chunk size, missing CRLF): the client's fault
        raise RequestError(400, f"malformed request body ({type(exc).__name__}: {str(exc)[:200]})") from None
    if declared is not None and total < declared:
        raise RequestError(400, f"request body ended after {total} of {declared} bytes")
    if not total:
        raise RequestError(400, "empty request body")
    body = b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "")
    try:
        inflated = inflate(body, encoding, limit=limit)
    except OverflowError:
        raise RequestError(413, f"request too large: inflated body over {limit} bytes, the limit is {limit} bytes") from None
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    if hold is not None and inflated is not body:
        hold.add(len(inflated))
    return inflated


def check_capture_geometry(metadata: CaptureMetadata | None, frame_shape: tuple[int, int], n_bands: int) -> None:
    """Refuse mosaic metadata that does not fit the frame or the model, before any profile is built.

    ``frame_shape`` is the raw frame's (rows, cols); ``n_bands`` the model's band count.
    A frame without calibration metadata uses a built-in profile (sizes fixed, nothing to check).
    """
    if metadata is None or not metadata.has_calibration:
        return
    pw, ph = metadata.pattern_wh
    if not (1 <= pw <= MAX_PATTERN_SIDE and 1 <= ph <= MAX_PATTERN_SIDE):
        raise RequestError(
            400, f"raw metadata claims a {pw} x {ph} mosaic pattern; at most {MAX_PATTERN_SIDE} x {MAX_PATTERN_SIDE} is supported"
        )
    if pw * ph != n_bands:
        raise RequestError(
            422, f"raw metadata claims a {pw} x {ph} mosaic ({pw * ph} bands), but the model needs {n_bands} bands"
        )
    ox, oy = metadata.filter_offset_xy
    w, h = metadata.filter_size_wh
    rows, cols = frame_shape
    if min(ox, oy) < 0 or w < pw or h < ph or ox + w > cols or oy + h > rows:
        raise RequestError(
            400,
            f"raw metadata places the filter area ({w} x {h} at {ox}, {oy}) outside the {cols} x {rows} frame",
        )


class ComputeSlots:
    """At most ``capacity`` requests score at once; a request that waits longer than ``wait_s`` gets 503.

    Threads that read request bodies are cheap and many; scoring uses every core, so
    running more at once only makes each slower and multiplies peak memory.
    """

    def __init__(self, capacity: int, wait_s: float) -> None:
        if capacity < 1:
            raise ValueError(f"compute slots must be >= 1, got {capacity}")
        self.capacity = capacity
        self.wait_s = wait_s
        self._semaphore = threading.BoundedSemaphore(capacity)

    @contextlib.contextmanager
    def slot(self):
        if not self._semaphore.acquire(timeout=self.wait_s):
            raise RequestError(
                503, f"the service is busy (all {self.capacity} scoring slots taken); retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            yield
        finally:
            self._semaphore.release()


def public_model_identity(info: ModelInfo) -> dict:
    """The model fields a response carries (JSON-ready): identity and contract, no training provenance."""
    data = info.to_dict()
    return {name: data[name] for name in PUBLIC_MODEL_FIELDS if name in data}
