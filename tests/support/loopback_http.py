"""A small HTTP server on 127.0.0.1 for client tests: a handler class served in a daemon thread.

Subclasses build their ``BaseHTTPRequestHandler`` (closing over the test's state) and call
:meth:`LoopbackHTTP.serve`; ``with server:`` starts it and always shuts it down.
"""
from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHTTP:
    httpd: ThreadingHTTPServer
    url: str

    def serve(self, handler: type[BaseHTTPRequestHandler], *, path: str = "/score",
              tls_context: ssl.SSLContext | None = None) -> None:
        """Bind ``handler`` to a free port on 127.0.0.1 (TLS with ``tls_context``); ``self.url`` ends in ``path``."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        scheme = "http"
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
