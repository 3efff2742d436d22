"""Slow clients for the scoring service's tests and load benchmark (loopback only, bounded)."""
from __future__ import annotations

import socket
import threading

_BODY_START = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n["


class SlowClients:
    """``n`` connections that send a request a few bytes at a time: half stuck in the headers,
    half in a body whose ``Content-Length`` is never reached (all in the headers with
    ``headers_only``). A context manager; the connections close on exit. ``closed_by_server``
    counts the ones the service cut; with ``reconnect`` each cut one is opened again at once
    (a sustained attack: ``n`` stay open however fast the service cuts them)."""

    def __init__(
        self, address: tuple[str, int], n: int, interval_s: float = 0.3, *, headers_only: bool = False,
        reconnect: bool = False,
    ) -> None:
        self.address = address
        self.headers_only = headers_only
        self.reconnect = reconnect
        self.sockets: list[tuple[int, socket.socket]] = [(i, self._open(i)) for i in range(n)]
        self.opened = n
        self.closed_by_server = 0
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self, i: int) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(_BODY_START if i % 2 and not self.headers_only else b"POST /sc")
        return sock

    def _trickle(self) -> None:
        while not self._stop.wait(self.interval_s):
            for entry in list(self.sockets):
                i, sock = entry
                try:
                    sock.send(b"1")
                except OSError:
                    self.sockets.remove(entry)
                    self.closed_by_server += 1
                    sock.close()
                    if self.reconnect and not self._stop.is_set():
                        try:
                            self.sockets.append((i, self._open(i)))
                            self.opened += 1
                        except OSError:
                            pass

    def __enter__(self) -> "SlowClients":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for _, sock in self.sockets:
            sock.close()
