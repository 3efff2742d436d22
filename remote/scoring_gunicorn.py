"""gunicorn settings and worker class of the scoring service: slow or idle clients cannot starve it.

``azureml-inference-server-http`` 1.5.1 runs gunicorn on Linux with ``-w WORKER_COUNT
--timeout WORKER_TIMEOUT`` on its command line and nothing else; every other gunicorn
setting comes from a configuration file. gunicorn reads ``./gunicorn.conf.py`` from the
working directory unless one is named, so the launcher (:mod:`remote.scoring_server`)
and the container (``packaging/scoring/Dockerfile``) name this module explicitly:
``GUNICORN_CMD_ARGS="--config python:remote.scoring_gunicorn"``. gunicorn applies the
module's lower-case names that are gunicorn settings and ignores the rest.

Why not the default: one ``sync`` worker serves one connection at a time, so one client
sending a byte a second held the only worker and even the liveness route ``/`` timed out.
And a thread per connection is not enough either: 34 connections sending one header byte
every 8 s held all 32 threads of gunicorn's ``gthread`` worker for their whole read budget.
Here each worker process is gunicorn's thread worker with a buffering front
(:class:`SlowClientSafeWorker`):

- the request line, headers and body (``Content-Length`` or chunked) are read by the
  worker's event loop (non-blocking, no thread) into the connection's buffer; only a
  complete request is handed to one of ``THREADS`` threads (default 32), so hundreds of
  slow connections cost a few KB each and no thread;
- per-connection deadlines in that front: headers within ``HEADER_DEADLINE_S`` of the
  connection (or of the previous answer on a kept-alive one), the whole request within
  ``READ_BUDGET_S``, and never ``READ_IDLE_S`` without a byte; a cut connection gets
  a JSON 408;
- at most ``MAX_CONNECTIONS`` open connections per worker process; one more gets a JSON
  503 with ``Retry-After`` and is closed at once (gunicorn's own limit would stop
  accepting, and the liveness route with it);
- bodies buffered by the front are bounded together (``FRONT_BUFFER_MB``): past that the
  service answers 503 with ``Retry-After`` rather than growing past the instance type's
  memory request; a ``Content-Length`` over ``NEUROHSI_MAX_REQUEST_MB`` and requests with
  ``Expect: 100-continue`` or unusual framing go to a thread at once (the entry script
  answers 413; gunicorn answers 100 Continue or refuses the framing);
- a read timeout on every client socket a thread reads (``READ_IDLE_S``) and a read budget
  per request (``READ_BUDGET_S``);
- gunicorn's own error answers (bad request line, header too large, bad chunk size...)
  are JSON ``{"error": ...}`` like every other answer of the service, not gunicorn's HTML.

Environment (read when gunicorn loads this module): ``NEUROHSI_THREADS``,
``NEUROHSI_READ_IDLE_S`` (10 s), ``NEUROHSI_READ_BUDGET_S`` (60 s),
``NEUROHSI_HEADER_DEADLINE_S`` (10 s), ``NEUROHSI_MAX_CONNECTIONS`` (512),
``NEUROHSI_FRONT_BUFFER_MB`` (192), ``NEUROHSI_MAX_REQUEST_MB`` (64).
"""
from __future__ import annotations

import json
import logging
import socket
import time
from functools import partial

import selectors

from gunicorn import util
from gunicorn.workers import gthread

from remote.env_settings import positive_float_env

THREADS = int(positive_float_env("NEUROHSI_THREADS", 32))
READ_IDLE_S = positive_float_env("NEUROHSI_READ_IDLE_S", 10.0)
READ_BUDGET_S = positive_float_env("NEUROHSI_READ_BUDGET_S", 60.0)
HEADER_DEADLINE_S = min(positive_float_env("NEUROHSI_HEADER_DEADLINE_S", 10.0), READ_BUDGET_S)
MAX_CONNECTIONS = int(positive_float_env("NEUROHSI_MAX_CONNECTIONS", 512))
FRONT_BUFFER_BYTES = int(positive_float_env("NEUROHSI_FRONT_BUFFER_MB", 192) * 1_000_000)
MAX_REQUEST_BYTES = int(positive_float_env("NEUROHSI_MAX_REQUEST_MB", 64) * 1_000_000)
# gunicorn's own header limits (request line 4094 bytes, 100 fields of 8190) allow ~800 KB;
# no client of ours sends more than a few hundred bytes, so the front stops buffering here and
# lets gunicorn's parser answer 431/414.
MAX_HEADER_BYTES = 64 * 1024
_RECV_BYTES = 256 * 1024
# How long a thread waits for the first byte of a new connection before handing it back
# to the poller (gunicorn's own wait is 5 s, during which an idle connection holds a thread).
FIRST_BYTE_WAIT_S = 0.5
RETRY_AFTER_S = 2

# ---- gunicorn settings (names gunicorn knows; everything else in this module is ignored by it)
worker_class = "remote.scoring_gunicorn.SlowClientSafeWorker"
threads = THREADS
# Above our own cap, so gunicorn never stops accepting: over the cap we answer 503 ourselves.
worker_connections = MAX_CONNECTIONS + 64
# Idle keep-alive connections wait in the poller (no thread); close them after 5 s.
keepalive = 5
graceful_timeout = 30


def json_error_bytes(status: int, reason: str, message: str, *, retry_after: int | None = None) -> bytes:
    """A complete HTTP/1.1 answer ``{"error": message}`` that closes the connection (message cut to 300 chars)."""
    if len(message) > 300:
        message = message[:300] + "..."
    body = json.dumps({"error": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close", "Content-Type: application/json"]
    if retry_after is not None:
        head.append(f"Retry-After: {retry_after}")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _write_json_error(sock, status_int, reason, mesg) -> None:
    """gunicorn's ``util.write_error`` answering JSON instead of an HTML page (same signature)."""
    text = f"{reason}: {mesg}" if mesg else reason
    util.write_nonblock(sock, json_error_bytes(int(status_int), reason, text))


class DeadlineSocket(socket.socket):
    """A client socket whose blocking reads time out, and that first returns what the front buffered.

    gunicorn switches a connection's socket to blocking mode (``setblocking(True)``)
    each time a thread takes it up for a request. Here that starts a read budget of
    ``READ_BUDGET_S`` for the request, and each ``recv`` waits at most ``READ_IDLE_S``
    (or what is left of the budget). A timeout raises :class:`TimeoutError` (an
    ``OSError``): gunicorn closes the connection, the entry script answers 408 when it
    was reading the body. ``buffered`` holds bytes the worker's event loop already read.
    """

    _deadline: float | None = None
    _cap: float | None = None  # a shorter timeout gunicorn set itself (its 2 s linger when closing)
    buffered: bytearray | None = None
    _offset = 0

    def setblocking(self, flag: bool) -> None:
        self._cap = None
        if flag:
            self._deadline = time.monotonic() + READ_BUDGET_S
            super().settimeout(READ_IDLE_S)
        else:
            self._deadline = None
            super().setblocking(False)

    def settimeout(self, value: float | None) -> None:
        self._cap = value
        super().settimeout(value)

    def _arm(self) -> None:
        if self._deadline is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"request not received within {READ_BUDGET_S:g} s")
        wait = min(READ_IDLE_S, left)
        if self._cap is not None:
            wait = min(wait, self._cap)
        super().settimeout(wait)

    @property
    def pending(self) -> int:
        """Bytes buffered by the front and not yet read."""
        return 0 if self.buffered is None else len(self.buffered) - self._offset

    def _take(self, size: int) -> bytes:
        size = size if size > 0 else self.pending
        chunk = bytes(self.buffered[self._offset:self._offset + size])
        self._offset += len(chunk)
        if self._offset >= len(self.buffered):
            self.buffered, self._offset = None, 0  # free it as soon as it is consumed
        return chunk

    def recv(self, bufsize: int, *args, **kwargs):
        if self.pending:
            return self._take(bufsize)
        self._arm()
        return super().recv(bufsize, *args, **kwargs)

    def recv_into(self, buffer, nbytes: int = 0, *args, **kwargs):
        if self.pending:
            chunk = self._take(nbytes or len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)
        self._arm()
        return super().recv_into(buffer, nbytes, *args, **kwargs)

    def sendall(self, *args, **kwargs):
        # Sending the answer has its own allowance: a client that stops reading must
        # not hold the thread for ever, but the budget spent on scoring is not its fault.
        if self._deadline is not None:
            super().settimeout(READ_IDLE_S if self._cap is None else min(READ_IDLE_S, self._cap))
        return super().sendall(*args, **kwargs)


class _ReadDeadlineLog(logging.Filter):
    """A client cut off by its read deadline is one INFO line, not an error with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TimeoutError):
            record.msg, record.args = "closed a slow or stalled connection (%s)", (str(error) or "read timed out",)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


CHUNKED = -1


def _content_length(head: bytes) -> int | None:
    """The body length a header block declares: its single valid ``Content-Length`` (0 without one),
    ``CHUNKED`` for ``Transfer-Encoding: chunked`` alone; ``None`` for anything else.

    ``None`` sends the request to a thread, where gunicorn's parser decides (and refuses
    what is malformed); the front only buffers what is unambiguous.
    """
    length, chunked = None, False
    for line in head.split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"expect":
            # A client waiting for "100 Continue" before it sends the body (curl does for
            # bodies over 1 MB): the thread's parser answers it.
            return None
        if name == b"transfer-encoding":
            if chunked or value != b"chunked":
                return None
            chunked = True
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 15:
                return None
            length = int(value)
    if chunked:
        return None if length is not None else CHUNKED  # both: gunicorn refuses it (request smuggling)
    return 0 if length is None else length


class _Front:
    """What the event loop knows of a connection it is still reading (no thread yet)."""

    __slots__ = ("started", "last_byte", "need", "searched", "chunked_from")

    def __init__(self, now: float) -> None:
        self.started = now
        self.last_byte = now
        self.need: int | None = None  # total bytes (headers + body) once the headers are in
        self.searched = 0  # where the search for the end of the headers (or of a chunked body) resumes
        self.chunked_from: int | None = None  # where a chunked body starts


class SlowClientSafeWorker(gthread.ThreadWorker):
    """gunicorn's thread worker with a buffering front and per-connection deadlines (module docstring)."""

    def init_process(self) -> None:
        self.log.error_log.addFilter(_ReadDeadlineLog())
        # gunicorn answers its own errors through util.write_error (an HTML page); this
        # process serves only the scoring API, whose answers are all JSON.
        util.write_error = _write_json_error
        self.front: dict[gthread.TConn, _Front] = {}
        self.front_bytes = 0
        super().init_process()  # runs the worker loop until the worker stops

    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took the connection, or the client left before we accepted
        sock = DeadlineSocket(client_sock.family, client_sock.type, client_sock.proto, fileno=client_sock.detach())
        if self.nr_conns >= MAX_CONNECTIONS:
            self._refuse(sock, 503, "Service Unavailable",
                         f"too many open connections (limit {MAX_CONNECTIONS}); retry shortly", retry_after=RETRY_AFTER_S)
            return
        self.nr_conns += 1
        conn = gthread.TConn(self.cfg, sock, client_addr, listener.getsockname())  # non-blocking from here
        self._read_in_front(conn)

    # ------------------------------------------------------------------ the front (event-loop thread)

    def _read_in_front(self, conn) -> None:
        self.front[conn] = _Front(time.monotonic())
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_front_readable, conn))

    def _leave_front(self, conn) -> None:
        self.front.pop(conn, None)
        self.front_bytes -= conn.sock.pending
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _on_front_readable(self, conn, _fileobj) -> None:
        state = self.front.get(conn)
        if state is None:
            return
        sock = conn.sock
        try:
            data = socket.socket.recv(sock, _RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._leave_front(conn)
            self.nr_conns -= 1
            conn.close()
            return
        state.last_byte = time.monotonic()
        if sock.buffered is None:
            sock.buffered, sock._offset = bytearray(), 0
        sock.buffered += data
        self.front_bytes += len(data)
        if state.need is None:
            buffered = sock.buffered
            end = buffered.find(b"\r\n\r\n", state.searched)
            if end < 0:
                state.searched = max(0, len(buffered) - 3)
                if len(buffered) > MAX_HEADER_BYTES:
                    self._to_thread(conn)  # gunicorn's parser answers 431 / 414
                return
            head_len = end + 4
            length = _content_length(bytes(buffered[:end]))
            if length is None or length > MAX_REQUEST_BYTES:
                self._to_thread(conn)  # odd framing, or a 413 the entry script gives at once
                return
            if length == CHUNKED:
                state.need, state.chunked_from, state.searched = head_len, head_len, head_len
            elif self.front_bytes - len(buffered) + head_len + length > FRONT_BUFFER_BYTES:
                self._refuse_busy(conn)
                return
            else:
                state.need = head_len + length
        if state.chunked_from is not None:
            self._on_chunked_bytes(conn, state)
        elif len(sock.buffered) >= state.need:
            self._to_thread(conn)

    def _on_chunked_bytes(self, conn, state: _Front) -> None:
        """Follow a chunked body's framing; hand it to a thread once the last chunk is in.

        Anything that is not plain framing (a bad size line, a chunk without its CRLF, a
        chunk over the request limit) goes to the thread at once, where gunicorn's parser
        answers 400 (or the entry script 413). ``state.searched`` is the next chunk's start.
        """
        buffered = conn.sock.buffered
        at = state.searched
        while True:
            line_end = buffered.find(b"\r\n", at)
            if line_end < 0:
                if len(buffered) - at > 1024:  # no chunk-size line is this long
                    self._to_thread(conn)
                    return
                break
            size_text = bytes(buffered[at:line_end]).split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 15 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
                self._to_thread(conn)
                return
            size = int(size_text, 16)
            if size == 0:
                if buffered.find(b"\r\n\r\n", line_end) >= 0:  # after the trailer fields, if any
                    self._to_thread(conn)
                    return
                break
            following = line_end + 2 + size + 2
            if size > MAX_REQUEST_BYTES:
                self._to_thread(conn)
                return
            if following > len(buffered):
                break
            if buffered[following - 2:following] != b"\r\n":
                self._to_thread(conn)
                return
            at = following
        state.searched = at
        if len(buffered) - state.chunked_from > MAX_REQUEST_BYTES:
            self._to_thread(conn)  # the entry script answers 413
        elif self.front_bytes > FRONT_BUFFER_BYTES:
            self._refuse_busy(conn)

    def _refuse_busy(self, conn) -> None:
        self._leave_front(conn)
        self.nr_conns -= 1
        self._refuse(conn.sock, 503, "Service Unavailable",
                     "the service is receiving too much at once; retry shortly", retry_after=RETRY_AFTER_S)

    def _to_thread(self, conn) -> None:
        self._leave_front(conn)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _refuse(self, sock, status: int, reason: str, message: str, *, retry_after: int | None = None) -> None:
        """Answer ``status`` without waiting (the event loop never blocks) and close."""
        try:
            socket.socket.setblocking(sock, False)
            socket.socket.send(sock, json_error_bytes(status, reason, message, retry_after=retry_after))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        util.close(sock)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, state in list(self.front.items()):
            if not self.alive:
                problem = "the service is stopping"
            elif state.need is None and now - state.started > HEADER_DEADLINE_S:
                problem = f"request headers not received in time (within {HEADER_DEADLINE_S:g} s)"
            elif now - state.started > READ_BUDGET_S:
                problem = f"request body not received in time (within {READ_BUDGET_S:g} s); send it again"
            elif now - state.last_byte > READ_IDLE_S:
                problem = f"request not received in time (nothing for {READ_IDLE_S:g} s); send it again"
            else:
                continue
            self._leave_front(conn)
            self.nr_conns -= 1
            self.log.info("closed a slow or stalled connection from %s (%s)", conn.client, problem)
            self._refuse(conn.sock, 408, "Request Timeout", problem)

    def on_client_socket_readable(self, conn, client) -> None:
        # A kept-alive connection's next request goes through the front like a new one.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_in_front(conn)

    # ------------------------------------------------------------------ threads

    def finish_request(self, conn, fs) -> None:
        # gunicorn closes a finished connection "gracefully" on its poller thread, lingering
        # up to 2 s while the peer keeps sending: 20 slow clients cut off at once would stall
        # accepting (and the liveness route) for 40 s. Linger on a pool thread instead.
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:  # noqa: BLE001 - gunicorn's own handling: close at once
            result = None
        if result and result is not gthread._DEFER and conn.sock.pending and self.alive:
            self.enqueue_req(conn)  # a pipelined next request already sits in the front's buffer
            return
        if result is gthread._DEFER or result:
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        if result is None and fs.done() and not fs.cancelled() and fs.exception() is not None:
            conn.close()
            return
        try:
            self.tpool.submit(conn.close, True)
        except RuntimeError:  # the pool is shutting down
            conn.close()

    def handle(self, conn):
        # A new connection with nothing to read goes back to the poller quickly, so idle
        # connections cost no thread (gunicorn itself waits 5 s here).
        if not conn.initialized and not conn.data_ready:
            if not conn.wait_for_data(FIRST_BYTE_WAIT_S):
                return gthread._DEFER
            conn.data_ready = True
        return super().handle(conn)
