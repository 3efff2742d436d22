"""A loopback stand-in for the front end of an Azure ML managed online endpoint.

What it does, as Azure documents its front end ("Troubleshoot online endpoint
deployment and scoring", HTTP status codes):

- forwards each request to the container (``upstream``, a real scoring service on
  127.0.0.1) and, when the container answers anything but 200, answers **424** with the
  container's code in ``ms-azureml-model-error-statuscode`` and its reason phrase in
  ``ms-azureml-model-error-reason`` (the body passes through unless ``keep_body=False``:
  the client must not depend on it);
- injects, on request, the answers the front end gives on its own: **429** with
  ``Retry-After`` (too many pending requests), **408** (request timeout), a connection
  **dropped mid-body** (an instance going away), and a **trickled** answer (one byte
  every ``trickle_s``) for deadline tests.

Faults are queued with :meth:`ManagedEndpointFrontEnd.inject` and used one per
request, in order; requests without a queued fault are forwarded. Every request's
method, headers and what the proxy answered are recorded in ``log``.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("429", "408", "drop_mid_body", "trickle")
_FORWARDED = ("Content-Type", "Content-Encoding", "Authorization", "azureml-model-deployment")


class ManagedEndpointFrontEnd:
    """Threaded HTTP proxy on 127.0.0.1 in front of ``upstream`` (``http://127.0.0.1:P/score``)."""

    def __init__(self, upstream: str, *, keep_body: bool = True, retry_after_s: int = 1, trickle_s: float = 1.0):
        self.upstream = upstream
        self.keep_body = keep_body
        self.retry_after_s = retry_after_s
        self.trickle_s = trickle_s
        self.faults: deque[str] = deque()
        self.log: list[dict] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                owner._handle(self)

            do_POST = do_GET

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/score"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ManagedEndpointFrontEnd":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def inject(self, *faults: str) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {FAULTS}")
        with self._lock:
            self.faults.extend(faults)

    def statuses(self) -> list[int | str]:
        return [entry["answer"] for entry in self.log]

    # ------------------------------------------------------------------ internals

    def _next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        fault = self._next_fault()
        entry = {"method": handler.command, "headers": dict(handler.headers), "fault": fault, "answer": None}
        with self._lock:
            self.log.append(entry)
        length = int(handler.headers.get("Content-Length") or 0)
        if fault == "drop_mid_body":
            handler.rfile.read(length // 2)
            entry["answer"] = "dropped"
            handler.close_connection = True
            handler.connection.shutdown(2)  # SHUT_RDWR: the client sees the connection reset mid-request
            return
        body = handler.rfile.read(length) if length else b""
        if fault == "429":
            entry["answer"] = 429
            self._send(handler, 429, {"message": "Too many pending requests"}, {"Retry-After": str(self.retry_after_s)})
            return
        if fault == "408":
            entry["answer"] = 408
            self._send(handler, 408, {"message": "Request timeout"}, {})
            return
        status, reason, headers, data = self._forward(handler.command, handler.headers, body)
        if fault == "trickle":
            entry["answer"] = "trickle"
            self._trickle(handler, status, headers, data)
            return
        if status != 200:
            entry["answer"] = 424
            extra = {"ms-azureml-model-error-statuscode": str(status), "ms-azureml-model-error-reason": reason}
            if "Retry-After" in headers:
                extra["Retry-After"] = headers["Retry-After"]
            payload = data if self.keep_body else json.dumps({"message": "Model Error"}).encode()
            self._send_raw(handler, 424, headers.get("Content-Type", "application/json"), payload, extra)
            return
        entry["answer"] = 200
        self._send_raw(handler, 200, headers.get("Content-Type", "application/octet-stream"), data, {})

    def _forward(self, method: str, headers, body: bytes) -> tuple[int, str, dict, bytes]:
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            forwarded = {name: headers[name] for name in _FORWARDED if headers.get(name) is not None}
            connection.request(method, parts.path, body=body if method == "POST" else None, headers=forwarded)
            response = connection.getresponse()
            return response.status, response.reason, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    @staticmethod
    def _send(handler, status: int, obj: dict, headers: dict) -> None:
        ManagedEndpointFrontEnd._send_raw(handler, status, "application/json", json.dumps(obj).encode(), headers)

    @staticmethod
    def _send_raw(handler, status: int, content_type: str, data: bytes, headers: dict) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _trickle(self, handler, status: int, headers: dict, data: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.flush()
        try:
            for i in range(len(data)):
                handler.wfile.write(data[i : i + 1])
                handler.wfile.flush()
                time.sleep(self.trickle_s)
        except OSError:  # the client gave up: that is the point of the test
            handler.close_connection = True
