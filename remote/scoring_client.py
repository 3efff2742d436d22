"""Client of the NeuroHSI scoring service (Azure ML online endpoint, AKS, or ``neurohsi serve``).

:class:`ScoringClient` sends a capture's TIFF bytes with the binary protocol
(:mod:`remote.scoring_protocol`) and returns a :class:`core.model.inference.ClassificationResult`
whose ``source`` is the endpoint URL. Dark and white references are sent once:
afterwards only their sha256 goes with the raw frame; when the service answers
409 with ``"missing"`` (it restarted, or another worker took the request), the
client sends them again.

Network behaviour (:mod:`remote.scoring_http`): one ``requests.Session`` whose
adapter retries with urllib3's ``Retry`` on connection errors and HTTP
408/429/502/503/504 (also when an Azure ML managed endpoint wraps them in 424),
with jittered exponential backoff and ``Retry-After`` honoured; connect and read
timeouts per socket operation and an overall **deadline** per call (default 20 s,
retries and the reference resend included), after which :class:`RemoteError` says so
and the caller may fall back to local classification. Behind a managed endpoint
every non-200 answer of the container arrives as 424 with the container's code in
``ms-azureml-model-error-statuscode``: the client reads that code, so the 409
reference recovery works there too. ``deployment`` adds the
``azureml-model-deployment`` header (route to one deployment of the endpoint).
TLS verification is always on (a custom CA bundle may be given, never ``verify=False``).
Scoring is idempotent (the same bytes give the same map, and the service keeps
no per-request state beyond its reference cache), so re-sending a request that
may have reached the service is safe. Client errors (4xx) and 500 are never retried.
"""
from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from core import defaults
from core.capture.files import Capture, find_references, frame_to_bytes
from core.errors import NeuroHSIError
from core.model.inference import ClassificationResult
from core.model.trust import flags_from_header
from core.model.trust import from_header as trust_from_header
from remote.scoring_http import (
    DEPLOYMENT_HEADER,
    MODEL_ERROR_STATUS,
    MODEL_REASON_HEADER,
    DeadlineExceeded,
    DeadlineRetry,
    call_with_deadline,
    effective_status,
    friendly_reason,
    is_loopback,
    is_plain_http_to_remote_host,
    missing_references,
    normalise_url,
)
from remote.scoring_http import (
    reason_of as _reason,
)
from remote.scoring_http import (
    service_message as _service_message,
)
from remote.scoring_answer import MAX_RESPONSE_BYTES, read_capped
from remote.scoring_protocol import (
    RESULT_CONTENT_TYPE,
    ScoringParams,
    decode_result,
    encode_request,
    gzip_body,
    model_info_from,
)

DEFAULT_DEADLINE_S = defaults.REMOTE_DEADLINE_S
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{2,31}$")  # Azure: a letter first, 3-32 characters
_HELD_LIMIT = 64


class RemoteError(NeuroHSIError):
    """A remote call failed: ``status`` (HTTP code, ``None`` without an answer), a message, the response body.

    ``status`` is the scoring container's own code (the inner code of an Azure ML
    424); ``deadline`` is True when the call gave up at its overall deadline.
    """

    def __init__(
        self, status: int | None, message: str, body: bytes | str | None = None, *, url: str | None = None,
        deadline: bool = False,
    ):
        self.status = status
        self.message = message
        self.body = body
        self.url = url
        self.deadline = deadline
        super().__init__(message)


class ScoringClient:
    """Talks to one scoring endpoint. Safe to reuse; not meant to be shared between threads."""

    def __init__(
        self,
        url: str,
        *,
        key: str | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        retries: int = 3,
        session: requests.Session | None = None,
        ca_bundle: str | Path | None = None,
        backoff_s: float = 0.5,
        return_probabilities: bool = True,
        compress_upload: bool | None = None,
        deadline_s: float | None = DEFAULT_DEADLINE_S,
        deployment: str | None = None,
        token_auth=None,
    ) -> None:
        """``retries``: connection failures are retried this many times; busy answers (408/429/5xx)
        until ``deadline_s`` (this many times when it is None); 0 retries nothing."""
        self.url = normalise_url(url)
        if key is not None and not key:
            raise ValueError("endpoint key is empty")
        if key is not None and token_auth is not None:
            raise ValueError("give the endpoint key or Entra ID token auth, not both")
        if (key is not None or token_auth is not None) and is_plain_http_to_remote_host(self.url):
            what = "key" if key is not None else "Entra ID token"
            raise ValueError(f"refusing to send the endpoint {what} over plain http to {urlsplit(self.url).hostname}; use https")
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError(f"timeout must be (connect_s, read_s), both positive, got {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if ca_bundle is not None and not Path(ca_bundle).is_file():
            raise ValueError(f"{ca_bundle}: CA bundle not found")
        if deadline_s is not None and not deadline_s > 0:
            raise ValueError(f"deadline must be positive seconds (or None), got {deadline_s!r}")
        if deployment is not None and not _DEPLOYMENT_NAME.match(deployment):
            raise ValueError(f"deployment name must start with a letter and be 3-32 letters, digits or '-' (Azure's rule), got {deployment!r}")
        self.deadline_s = None if deadline_s is None else float(deadline_s)
        self.deployment = deployment
        self._key = key
        self._token_auth = token_auth  # remote.endpoint_auth.EntraTokenAuth (aad_token endpoints)
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self.retries = int(retries)
        self.max_response_bytes = MAX_RESPONSE_BYTES
        self.backoff_s = float(backoff_s)
        self.return_probabilities = return_probabilities
        # gzip level 1 costs ~60-90 ms per full frame and saves ~35% of the bytes (1.6 MB):
        # worth it on a network link (break-even near 100 Mbit/s), not on loopback.
        # None: compress unless the endpoint is on this machine.
        self.compress_upload = (not is_loopback(self.url)) if compress_upload is None else bool(compress_upload)
        # True or a CA bundle path: TLS certificates are always verified.
        self._verify: bool | str = str(ca_bundle) if ca_bundle is not None else True
        self._own_session = session is None
        self.session = session or requests.Session()
        self._adapter = HTTPAdapter(max_retries=DeadlineRetry.for_call(self.retries, self.backoff_s, None))
        # Mounted for this endpoint's address only, so a session shared with other code keeps its behaviour.
        parts = urlsplit(self.url)
        self.session.mount(f"{parts.scheme}://{parts.netloc}/", self._adapter)
        self._held: OrderedDict[str, None] = OrderedDict()  # reference sha256 the service is believed to hold
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256
        # Live mode sends the same in-memory pair with every capture: its TIFF bytes and
        # sha256 are made once per pair (frames by identity, kept alive here; metadata by value).
        self._encoded_pairs: list[tuple[np.ndarray, np.ndarray, object, dict]] = []  # newest last, at most 2
        self.service_info: dict | None = None
        self.last_exchange: dict = {}  # request/response bytes and HTTP request count of the last call

    def __repr__(self) -> str:
        auth = "key" if self._key else ("entra" if self._token_auth is not None else "none")
        return f"ScoringClient({self.url!r}, auth={auth})"

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> "ScoringClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- public calls

    def ping(self) -> float:
        """Round-trip time (s) of a service-info request; checks address, key and service. ``RemoteError`` otherwise."""
        start = time.perf_counter()
        response = self._send("GET", None, {}, self._deadline())
        latency = time.perf_counter() - start
        if response.status_code != 200:
            raise self._error_for(response)
        try:
            info = response.json()
        except ValueError:
            info = None
        if not isinstance(info, dict) or info.get("service") != "neurohsi-scoring":
            raise RemoteError(200, f"{self.url}: answers, but is not a NeuroHSI scoring service", response.content, url=self.url)
        self.service_info = info
        return latency

    def classify_files(
        self, raw_path: str | Path, dark_path: str | Path | None = None, white_path: str | Path | None = None
    ) -> ClassificationResult:
        """Classify a raw TIFF and its references (found by name when not given) on the service."""
        start = time.perf_counter()
        raw_path = Path(raw_path)
        if dark_path is None or white_path is None:
            found_dark, found_white = find_references(raw_path)
            dark_path, white_path = dark_path or found_dark, white_path or found_white
        raw = _read(raw_path)
        references = {kind: self._file_reference(Path(p)) for kind, p in (("dark", dark_path), ("white", white_path))}
        read_s = time.perf_counter() - start
        result = self._score(raw, references, start)
        result.timings_s["read"] = read_s
        return result

    def classify_capture(self, capture: Capture) -> ClassificationResult:
        """Classify an in-memory capture (frames re-encoded as TIFF, metadata kept on the raw frame)."""
        start = time.perf_counter()
        raw = frame_to_bytes(capture.raw, capture.metadata)
        result = self._score(raw, self._encoded_references(capture), start)
        result.timings_s["read"] = 0.0
        return result

    def forget_references(self) -> None:
        """Send the references with the next request even if the service should hold them."""
        self._held.clear()

    # ------------------------------------------------------------------- internals

    def _encoded_references(self, capture: Capture) -> dict:
        """``{kind: (sha256, loader)}`` of the capture's dark and white frames, encoded once per pair."""
        for dark, white, metadata, references in self._encoded_pairs:
            if dark is capture.dark and white is capture.white and metadata == capture.metadata:
                return references
        references = {}
        for kind, frame in (("dark", capture.dark), ("white", capture.white)):
            data = frame_to_bytes(frame, capture.metadata)
            references[kind] = (hashlib.sha256(data).hexdigest(), lambda data=data: data)
        self._encoded_pairs = [*self._encoded_pairs[-1:], (capture.dark, capture.white, capture.metadata, references)]
        return references

    def _file_reference(self, path: Path):
        """(sha256, loader) of a reference file; the digest is remembered while the file is unchanged."""
        try:
            stat = path.stat()
        except OSError as exc:
            raise RemoteError(None, f"{path}: cannot read reference ({exc.strerror or exc})") from None
        memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        digest = self._digests.get(memo_key)
        if digest is None:
            digest = hashlib.sha256(_read(path)).hexdigest()
            self._digests[memo_key] = digest
        return digest, lambda: _read(path)

    def _deadline(self) -> float | None:
        return None if self.deadline_s is None else time.monotonic() + self.deadline_s

    def _score(self, raw: bytes, references: dict, start: float) -> ClassificationResult:
        deadline = self._deadline()
        digests = {kind: sha for kind, (sha, _) in references.items()}
        params = ScoringParams(digests["dark"], digests["white"], return_probabilities=self.return_probabilities)
        send = [kind for kind, sha in digests.items() if sha not in self._held]
        request_bytes, http_requests = 0, 0
        request_s = encode_s = 0.0
        for _ in range(2):  # a 409 "missing" is answered once by sending what the service lacks
            t_encode = time.perf_counter()
            parts = {kind: (references[kind][1]() if kind in send else None) for kind in ("dark", "white")}
            body, content_type = encode_request(raw, parts["dark"], parts["white"], params)
            headers = {"Content-Type": content_type}
            if self.compress_upload:
                body = gzip_body(body)
                headers["Content-Encoding"] = "gzip"
            t0 = time.perf_counter()
            encode_s += t0 - t_encode
            response = self._send("POST", body, headers, deadline)
            request_s += time.perf_counter() - t0
            request_bytes += len(body)
            http_requests += 1
            if self._status(response) == 409 and not all(kind in send for kind in digests):
                # Resend both references, not only the one named missing: the next request may reach
                # another worker or instance (each holds its own cache), and a self-sufficient
                # request cannot be refused again for a missing reference.
                for kind in missing_references(response):
                    self._held.pop(digests[kind], None)
                send = sorted(digests)
                continue
            break
        self.last_exchange = {
            "request_bytes": request_bytes,
            "response_bytes": len(response.content),
            "http_requests": http_requests,
            "references_sent": send,
        }
        if response.status_code != 200:
            raise self._error_for(response)
        for sha in digests.values():
            self._held[sha] = None
            self._held.move_to_end(sha)
        while len(self._held) > _HELD_LIMIT:
            self._held.popitem(last=False)
        result = self._result_from(response, start, request_s)
        result.timings_s["encode"] = encode_s
        return result

    def _result_from(self, response: requests.Response, start: float, request_s: float) -> ClassificationResult:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != RESULT_CONTENT_TYPE:
            raise RemoteError(
                200, f"{self.url}: unexpected answer of type {content_type or 'unknown'}", response.content, url=self.url
            )
        try:
            decoded = decode_result(response.content)
            info = model_info_from(decoded.header["model"])
            quality, ood_mask, ood_fraction = trust_from_header(decoded.header, decoded.labels.shape)
            flags = flags_from_header(decoded.header, decoded.labels.shape)
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteError(200, f"{self.url}: unreadable answer ({exc})", None, url=self.url) from None
        server = {k: float(v) for k, v in decoded.header.get("timings_s", {}).items() if isinstance(v, (int, float))}
        # Time the service spent on the request once it had the bytes (receiving them is transfer).
        server_s = max(0.0, server.get("total", 0.0) - server.get("receive", 0.0))
        timings = {
            "preprocess": server.get("preprocess", 0.0),
            "infer": server.get("infer", 0.0),
            "server": server_s,
            "upload": max(0.0, request_s - server_s),
            "total": time.perf_counter() - start,
        }
        probabilities = decoded.probabilities
        if probabilities is None:
            probabilities = np.zeros((*decoded.labels.shape, 0), np.float32)
        rgb = decoded.rgb if decoded.rgb is not None else np.zeros((*decoded.labels.shape, 3), np.uint8)
        return ClassificationResult(
            decoded.labels, probabilities, rgb, info, timings, None, self.url,
            quality=quality, ood_mask=ood_mask, ood_fraction=ood_fraction, **flags,
        )

    @staticmethod
    def _status(response: requests.Response) -> int:
        return effective_status(response.status_code, response.headers)

    def _send(self, method: str, body: bytes | None, headers: dict, deadline: float | None) -> requests.Response:
        """One logical request: urllib3 retries (see the module docstring), bounded by ``deadline`` (monotonic s)."""
        headers = dict(headers)
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key}"
        elif self._token_auth is not None:
            from remote.endpoint_auth import TokenError

            try:  # refreshed before it expires; a failed refresh is a failed call (the caller falls back)
                headers["Authorization"] = self._token_auth.header()
            except TokenError as exc:
                raise RemoteError(None, f"{self.url}: {exc}", url=self.url) from None
        if self.deployment is not None:
            headers[DEPLOYMENT_HEADER] = self.deployment
        retry = DeadlineRetry.for_call(self.retries, self.backoff_s, deadline)
        if deadline is None:
            return self._exchange(method, body, headers, None, retry)
        started = time.monotonic()
        try:
            return call_with_deadline(
                lambda: self._exchange(method, body, headers, deadline, retry), deadline - started
            )
        except DeadlineExceeded:
            raise self._past_deadline(retry, started) from None

    def _past_deadline(self, retry: DeadlineRetry, started: float) -> RemoteError:
        """The error when the deadline passed mid-call: it names the last busy answer, if one was retried."""
        if retry.log.busy is None:
            return RemoteError(
                None, f"no result from {self.url} within the {self.deadline_s:g} s deadline", url=self.url, deadline=True
            )
        status, detail = retry.log.busy
        message = self._describe(status, detail)
        message += (f"; gave up after {time.monotonic() - started:.1f} s: no answer to the last retry, "
                    f"past the {self.deadline_s:g} s deadline")
        return RemoteError(status, message, url=self.url, deadline=True)

    def _exchange(
        self, method: str, body: bytes | None, headers: dict, deadline: float | None, retry: DeadlineRetry
    ) -> requests.Response:
        """The HTTP exchange with retries (``retry``); an answer cut short after its headers is sent again too."""
        self._adapter.max_retries = retry
        timeout = self.timeout
        attempt = 0
        started = time.monotonic()
        while True:
            if deadline is not None:
                left = max(0.05, deadline - time.monotonic())
                timeout = (min(self.timeout[0], left), min(self.timeout[1], left))
            try:
                # Never redirected: a 307 to another host would re-send the capture (and the key) there.
                response = self.session.request(
                    method, self.url, data=body, headers=headers, timeout=timeout, verify=self._verify,
                    allow_redirects=False, stream=True,
                )
                # Why retrying stopped early (a wait past the deadline), for the error message.
                response.neurohsi_gave_up = self._gave_up(retry, started)
                return read_capped(response, self.url, self.max_response_bytes, RemoteError)
            except DeadlineExceeded:
                raise
            except requests.exceptions.SSLError as exc:
                # A certificate problem does not heal by retrying.
                raise RemoteError(None, f"{self.url}: TLS verification failed ({_reason(exc)})", url=self.url) from None
            except requests.exceptions.ReadTimeout:
                if deadline is not None and timeout[1] < self.timeout[1]:
                    # the read timeout was cut to what was left of the deadline: the deadline ended the wait
                    raise RemoteError(
                        None, f"no result from {self.url} within the {self.deadline_s:g} s deadline",
                        url=self.url, deadline=True,
                    ) from None
                raise RemoteError(
                    None, f"no answer from {self.url} within {timeout[1]:g} s", url=self.url
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # urllib3 already retried failures before the answer's headers; an answer
                # cut short afterwards (ChunkedEncodingError) is retried here, within the budget.
                if isinstance(exc, requests.exceptions.ChunkedEncodingError) and attempt < self.retries:
                    self._pause(attempt, deadline)
                    attempt += 1
                    continue
                if isinstance(exc, requests.exceptions.ConnectTimeout):
                    message = f"cannot reach {self.url} (no connection within {self.timeout[0]:g} s)"
                else:
                    message = f"cannot reach {self.url} ({_reason(exc)})"
                raise RemoteError(None, message + self._gave_up(retry, started), url=self.url) from None
            except requests.exceptions.RequestException as exc:
                raise RemoteError(None, f"{self.url}: request failed ({_reason(exc)})", url=self.url) from None

    def _gave_up(self, retry: DeadlineRetry, started: float) -> str:
        """``"; gave up after N s: <why>"`` when ``retry`` stopped because a wait would pass the deadline."""
        if not retry.stopped:
            return ""
        return (f"; gave up after {time.monotonic() - started:.1f} s: {retry.stopped[-1]}, "
                f"past the {self.deadline_s:g} s deadline")

    def _pause(self, attempt: int, deadline: float | None) -> None:
        wait = min(self.backoff_s * 2**attempt, 10.0)
        if deadline is not None and time.monotonic() + wait >= deadline:
            raise DeadlineExceeded("no time left for another attempt")
        time.sleep(wait)

    def _error_for(self, response: requests.Response) -> RemoteError:
        status = self._status(response)
        detail = _service_message(response)
        if not detail and response.status_code == MODEL_ERROR_STATUS:
            detail = " ".join(response.headers.get(MODEL_REASON_HEADER, "").split())[:200]
        message = self._describe(status, detail) + getattr(response, "neurohsi_gave_up", "")
        return RemoteError(status, message, response.content, url=self.url)

    def _describe(self, status: int, detail: str) -> str:
        """``"<url>: <what the code means> (HTTP <code>): <the service's message>"``."""
        auth = "entra" if self._token_auth is not None else ("key" if self._key is not None else None)
        message = f"{self.url}: {friendly_reason(status, auth=auth)} (HTTP {status})"
        if detail and status not in (401, 403):
            message += f": {detail}"
        return message


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RemoteError(None, f"{path}: cannot read ({exc.strerror or exc})") from None

