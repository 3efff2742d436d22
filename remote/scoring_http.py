"""HTTP plumbing of the scoring client: retries, Azure ML's 424 wrapping, an overall deadline.

Azure ML online endpoints answer with codes of their own in front of the container
(learn.microsoft.com, "Troubleshoot online endpoint deployment and scoring", HTTP status
codes):

- **424 Model Error**: the container answered something other than 200; the front end
  replaces the code with 424 and puts the container's code in the
  ``ms-azureml-model-error-statuscode`` header (reason in ``ms-azureml-model-error-reason``).
  :func:`effective_status` gives the container's code back, so a 409 "send the
  references" or a 503 "busy" from our service means the same behind the front end.
- **408 Request timeout**: the model took longer than ``request_timeout_ms``.
- **429**: more than ``2 * max_concurrent_requests_per_instance * instance_count``
  requests pending, or rate limiting; back off and retry.
- 502/503/504: the gateway or the container is restarting or busy.

:class:`DeadlineRetry` is urllib3's ``Retry`` for those codes (and 424 wrapping one of
them) on GET and POST: with a deadline they are retried until it (not a fixed count: the
front end may answer 429 several times in a row while it scales), ``Retry-After`` honoured
for every retried code and ignored when garbage or negative (the jittered exponential
backoff applies then). When the next wait would end past the deadline, the last answer
comes back at once and the client's message says so ("the service asked to retry after
30 s (Retry-After), past the 20 s deadline"), rather than waiting out the deadline.
:func:`call_with_deadline` runs one exchange in a daemon thread and gives up at the
deadline: ``requests`` timeouts bound each socket read, not the whole answer, so a
server trickling one byte a second would otherwise hold the caller for minutes.
"""
from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
MODEL_ERROR_STATUS = 424
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"
MODEL_REASON_HEADER = "ms-azureml-model-error-reason"
DEPLOYMENT_HEADER = "azureml-model-deployment"
# Jitter added to each backoff (uniform 0..this many seconds): clients that failed
# together (an instance restarting) do not all come back at the same instant.
BACKOFF_JITTER_S = 0.25


class DeadlineExceeded(Exception):
    """The call's deadline passed (or a retry's wait would end after it)."""


def effective_status(status: int, headers) -> int:
    """The container's own status: the inner code of an Azure ML 424, else ``status``."""
    if status != MODEL_ERROR_STATUS:
        return status
    inner = (headers.get(MODEL_STATUS_HEADER) or "").strip()
    return int(inner) if inner.isdigit() and 100 <= int(inner) <= 599 else status


@dataclass(frozen=True)
class RetryStopped:
    """Why retrying stopped before the deadline: the next wait (``wait_s``) would end past it.

    ``status`` is the last answer's code (None after a connection failure), ``retry_after``
    whether the service asked for that wait (``Retry-After``); ``str()`` says it in words.
    """

    why: str
    status: int | None
    wait_s: float
    retry_after: bool

    def __str__(self) -> str:
        return self.why


@dataclass
class RetryLog:
    """What a call's retries saw, shared by every copy urllib3 makes of its :class:`DeadlineRetry`.

    ``stopped``: why retrying stopped before the deadline; ``busy``: the last busy answer
    (code, the service's message) when it was retried, so that a deadline that then passes
    still names it; ``sent_at``: when the current attempt started (monotonic s);
    ``attempt_s``: how long the last answered attempt took (s), so that a retry that could
    not be answered before the deadline is not started.
    """

    stopped: list[RetryStopped]
    busy: tuple[int, str] | None = None
    sent_at: float = 0.0
    attempt_s: float = 0.0


# The most of a busy answer's body read for its message (the rest is drained unread).
BUSY_BODY_BYTES = 4096


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None when absent or
    unusable (garbage, negative, not finite): such a header is ignored and the backoff applies."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        parsed = email.utils.parsedate_tz(text) if text else None
        if parsed is None:
            return None
        try:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
        except (OverflowError, ValueError):
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class DeadlineRetry(Retry):
    """``Retry`` on RETRY_STATUSES (also wrapped in a 424) until ``deadline`` (monotonic s).

    With a deadline, busy answers (408/429/5xx) are retried as long as the next wait ends before
    it (``Retry-After`` when the service gives a usable one, else jittered exponential backoff);
    connection failures ``retries`` times. Without one, both ``retries`` times. When a wait would
    end past the deadline the last answer is handed back at once and :attr:`stopped` says why.
    """

    # Every code we retry may carry Retry-After (Azure ML's 429, our 503); honour it on all.
    RETRY_AFTER_STATUS_CODES = RETRY_STATUSES

    def __init__(self, *args, deadline: float | None = None, log: RetryLog | None = None,
                 next_wait: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        # Shared by every copy urllib3 makes (new()): the caller reads why retrying stopped.
        self.log = RetryLog([], sent_at=time.monotonic()) if log is None else log
        self.next_wait = next_wait

    @property
    def stopped(self) -> list[RetryStopped]:
        """Why retrying stopped before the deadline (empty when it did not)."""
        return self.log.stopped

    @classmethod
    def for_call(cls, retries: int, backoff_s: float, deadline: float | None) -> "DeadlineRetry":
        # Busy answers: unlimited by count when a deadline bounds them (Azure ML's front end
        # may answer 429 several times in a row while instances scale); retries=0 means none.
        status = retries if (deadline is None or retries == 0) else None
        return cls(
            total=None,
            connect=retries,
            read=retries,
            status=status,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES | {MODEL_ERROR_STATUS},
            allowed_methods=frozenset({"GET", "POST"}),  # scoring is idempotent: same bytes, same map
            backoff_factor=backoff_s,
            backoff_max=10.0,
            backoff_jitter=BACKOFF_JITTER_S,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
            deadline=deadline,
        )

    def new(self, **kw) -> "DeadlineRetry":
        retry = super().new(**kw)
        retry.deadline = self.deadline
        retry.log = self.log
        return retry

    def parse_retry_after(self, retry_after: str) -> float | None:  # type: ignore[override]
        return parse_retry_after(retry_after)

    def get_retry_after(self, response) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"))

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and response.status == MODEL_ERROR_STATUS:
            if effective_status(response.status, response.headers) not in RETRY_STATUSES:
                # A 424 wrapping a 4xx or 500 is an answer, not a transient failure: hand it back.
                raise MaxRetryError(_pool, url, None)
        if isinstance(error, ReadTimeoutError):
            # The service took the request and is silent: resending would double the wait
            # (and the work); the caller decides (fall back to local, say why).
            raise error
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        asked = None if response is None else retry.get_retry_after(response)
        wait = asked if asked is not None else retry.get_backoff_time()
        now = time.monotonic()
        self.log.attempt_s = max(0.0, now - self.log.sent_at)
        # A retry is worth starting only if its answer can come before the deadline: the wait
        # plus as long as the last attempt took (under load a service answers slowly too).
        if self.deadline is not None and now + wait + self.log.attempt_s >= self.deadline:
            status = None if response is None else effective_status(response.status, response.headers)
            why = (f"the service asked to retry after {wait:g} s (Retry-After)" if asked is not None
                   else f"the next retry (in {wait:.1f} s)")
            self.log.stopped.append(RetryStopped(why, status, wait, asked is not None))
            # MaxRetryError hands a busy answer back to the caller (raise_on_status=False) and
            # turns a connection failure into requests' ConnectionError: both say what happened.
            raise MaxRetryError(_pool, url, error)
        if response is not None:
            self.log.busy = (effective_status(response.status, response.headers), _busy_message(response))
        retry.next_wait = wait
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 waits nothing before the first retry; a busy service deserves a short pause too.
        base = super().get_backoff_time()
        if base == 0 and self.history:
            base = self.backoff_factor
        return base

    def sleep(self, response=None) -> None:
        # The wait was chosen (and checked against the deadline) in increment().
        if self.next_wait > 0:
            time.sleep(self.next_wait)
        self.log.sent_at = time.monotonic()


def _busy_message(response) -> str:
    """The service's message in a busy answer that is about to be retried (its first 4 KiB; '' if unreadable)."""
    try:
        body = response.read(BUSY_BODY_BYTES, decode_content=True) or b""
    except Exception:  # a broken busy answer: its code says enough
        return ""
    return message_from_body(body, response.headers.get("Content-Type", ""))


def call_with_deadline(function: Callable[[], T], timeout_s: float) -> T:
    """``function()`` run in a daemon thread; :class:`DeadlineExceeded` if it has not returned in ``timeout_s``.

    The abandoned thread ends on its own (its socket reads time out); being a daemon,
    it never keeps the process alive.
    """
    if timeout_s <= 0:
        raise DeadlineExceeded("deadline passed")
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="neurohsi-scoring-request", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DeadlineExceeded(f"no complete answer within {timeout_s:.1f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (``__cause__``, ``__context__``, urllib3's ``reason``)."""
    seen, todo = [], [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
    return seen


def reason_of(exc: Exception) -> str:
    """The innermost cause of a requests error, briefly (``connection refused`` rather than a pool repr).

    Known causes are recognised by their exception type, not their text: the operating system
    words them in the user's language (``Verbindungsaufbau abgelehnt``).
    """
    import socket

    chain = _chain(exc)
    for kinds, reason in (((ConnectionRefusedError,), "connection refused"),
                          ((ConnectionResetError,), "connection reset"),
                          ((socket.gaierror,), "name or service not known"),
                          ((TimeoutError, socket.timeout), "timed out")):
        if any(isinstance(e, kinds) for e in chain):
            return reason
    inner = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = f"{exc} {inner}"
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return " ".join((str(inner) or inner.__class__.__name__).split())[:200]


_FRIENDLY = {
    401: "endpoint key rejected",
    403: "access to the endpoint denied",
    404: "no scoring service at this address",
    405: "the address does not accept scoring requests",
    413: "request too large",
    408: "the service did not finish in time (request timeout)",
    429: "the service is busy (too many requests)",
}


def friendly_reason(status: int, *, auth: str | None) -> str:
    """What an HTTP ``status`` means for the user; ``auth`` is how the client signed in: "key", "entra" or None."""
    if status == 401 and auth == "entra":
        return "Entra ID token rejected"
    if status == 403 and auth == "entra":
        return "the signed-in account may not score on this endpoint (it needs the score/action role)"
    if status == 401 and auth is None:
        return "the endpoint needs a key and none was given"
    if status in _FRIENDLY:
        return _FRIENDLY[status]
    if status in RETRY_STATUSES:
        return "service unavailable"
    return "service error" if status >= 500 else "request rejected"


def missing_references(response) -> list[str]:
    """The references a 409 answer names as missing (``{"missing": ["dark", ...]}``)."""
    try:
        missing = response.json().get("missing", [])
    except (ValueError, AttributeError):
        return []
    return [kind for kind in missing if kind in ("dark", "white")]


def service_message(response) -> str:
    """The service's error message: ``{"error": ...}`` (NeuroHSI) or ``{"message": ...}`` (Azure ML front ends)."""
    return message_from_body(response.content or b"", response.headers.get("Content-Type", ""))


def message_from_body(content: bytes, content_type: str) -> str:
    """:func:`service_message` of an answer's ``content`` (bytes) and ``Content-Type``."""
    try:
        body = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace")
        if "html" in content_type.lower() or text.lstrip().startswith("<"):
            title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        return " ".join(text.split())[:200]
    if isinstance(body, dict):
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return ""


# -- endpoint URLs ---------------------------------------------------------------------


def normalise_url(url: str) -> str:
    """``url`` with ``/score`` appended when it names only a host (Azure ML scoring URIs end in /score)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("endpoint URL is empty")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint URL must be http(s)://host[:port]/path, got {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/score"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_plain_http_to_remote_host(url: str) -> bool:
    return urlsplit(url).scheme == "http" and not is_loopback(url)
