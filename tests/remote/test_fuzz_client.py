"""Second fuzz pass on the scoring client against a misbehaving endpoint: redirects, huge answers (issue 26)."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest

from remote.scoring_client import RemoteError, ScoringClient
from tests.remote.test_scoring_client import ScriptedServer
from tests.support.loopback_http import LoopbackHTTP
from tests.support.scoring import small_capture


class StreamingServer(LoopbackHTTP):
    """Answers every request with 200 and ``size`` bytes, with or without ``Content-Length``; counts bytes sent."""

    def __init__(self, size: int, *, declare: bool) -> None:
        self.sent = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if declare:
                    self.send_header("Content-Length", str(size))
                self.end_headers()  # HTTP/1.0 without Content-Length: the body ends when the connection closes
                block = b"0" * 65536
                try:
                    while owner.sent < size:
                        self.wfile.write(block)
                        owner.sent += len(block)
                except OSError:
                    pass  # the client stopped reading

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.serve(Handler)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(status):
    capture = small_capture(0)
    with ScriptedServer([(200, {})]) as elsewhere:
        with ScriptedServer([(status, {}, {"Location": elsewhere.url})]) as endpoint:
            client = ScoringClient(endpoint.url, retries=2, backoff_s=0.01, key="secret-key")
            with pytest.raises(RemoteError, match=rf"redirects \(HTTP {status} to http://127\.0\.0\.1:\d+/score\); .*never redirected"):
                client.classify_capture(capture)
            with pytest.raises(RemoteError, match="never redirected"):
                client.ping()
    assert elsewhere.requests == []  # neither the capture nor the key went to the other host
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize("declare", [True, False])
def test_an_answer_over_the_size_cap_is_cut_off(declare):
    size = 8 * 2**20
    with StreamingServer(size, declare=declare) as server:
        client = ScoringClient(server.url, retries=0)
        client.max_response_bytes = 2**20
        with pytest.raises(RemoteError, match=r"over the 1048576 byte limit"):
            client.ping()
    if declare:
        assert server.sent < size  # refused on the declared length, not read
