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
Here each worker process is a thread pool (:class:`SlowClientSafeWorker`, gunicorn's
``gthread`` worker) with:

- ``THREADS`` connection threads per process (default 32): a thread waiting on a slow
  client costs a few KB and no CPU, while the compute itself is bounded separately by
  the entry script (``NEUROHSI_MAX_CONCURRENT_SCORING``);
- a read timeout on every client socket (``NEUROHSI_READ_IDLE_S``, default 10 s without a
  byte) and a read budget per request (``NEUROHSI_READ_BUDGET_S``, default 60 s for headers
  plus body), so a client trickling bytes gives its thread back within the budget;
- idle new connections handed back to gunicorn's poller after 0.5 s instead of 5 s.

Environment (read when gunicorn loads this module): ``NEUROHSI_THREADS``,
``NEUROHSI_READ_IDLE_S``, ``NEUROHSI_READ_BUDGET_S``.
"""
from __future__ import annotations

import logging
import socket
import time

from gunicorn.workers import gthread

from remote.env_settings import positive_float_env

THREADS = int(positive_float_env("NEUROHSI_THREADS", 32))
READ_IDLE_S = positive_float_env("NEUROHSI_READ_IDLE_S", 10.0)
READ_BUDGET_S = positive_float_env("NEUROHSI_READ_BUDGET_S", 60.0)
# How long a thread waits for the first byte of a new connection before handing it back
# to the poller (gunicorn's own wait is 5 s, during which an idle connection holds a thread).
FIRST_BYTE_WAIT_S = 0.5

# ---- gunicorn settings (names gunicorn knows; everything else in this module is ignored by it)
worker_class = "remote.scoring_gunicorn.SlowClientSafeWorker"
threads = THREADS
# Idle keep-alive connections wait in the poller (no thread); close them after 5 s.
keepalive = 5
# Request line and header limits stay at gunicorn's defaults (4094 bytes, 100 fields).
graceful_timeout = 30


class DeadlineSocket(socket.socket):
    """A client socket whose blocking reads time out.

    gunicorn switches a connection's socket to blocking mode (``setblocking(True)``)
    each time a thread takes it up for a request. Here that starts a read budget of
    ``READ_BUDGET_S`` for the request, and each ``recv`` waits at most ``READ_IDLE_S``
    (or what is left of the budget). A timeout raises :class:`TimeoutError` (an
    ``OSError``): gunicorn closes the connection, the entry script answers 408 when it
    was reading the body.
    """

    _deadline: float | None = None
    _cap: float | None = None  # a shorter timeout gunicorn set itself (its 2 s linger when closing)

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

    def recv(self, *args, **kwargs):
        self._arm()
        return super().recv(*args, **kwargs)

    def recv_into(self, *args, **kwargs):
        self._arm()
        return super().recv_into(*args, **kwargs)

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


class SlowClientSafeWorker(gthread.ThreadWorker):
    """gunicorn's thread worker with per-socket read deadlines (see :class:`DeadlineSocket`)."""

    def init_process(self) -> None:
        self.log.error_log.addFilter(_ReadDeadlineLog())
        super().init_process()  # runs the worker loop until the worker stops

    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took the connection, or the client left before we accepted
        sock = DeadlineSocket(client_sock.family, client_sock.type, client_sock.proto, fileno=client_sock.detach())
        self.nr_conns += 1
        sock.setblocking(True)
        conn = gthread.TConn(self.cfg, sock, client_addr, listener.getsockname())
        self.enqueue_req(conn)

    def finish_request(self, conn, fs) -> None:
        # gunicorn closes a finished connection "gracefully" on its poller thread, lingering
        # up to 2 s while the peer keeps sending: 20 slow clients cut off at once would stall
        # accepting (and the liveness route) for 40 s. Linger on a pool thread instead.
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:  # noqa: BLE001 - gunicorn's own handling: close at once
            result = None
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
