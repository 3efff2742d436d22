"""Slow clients for the scoring service's tests and load benchmark (loopback only, bounded)."""
from __future__ import annotations

import socket
import threading


class SlowClients:
    """``n`` connections that send a request a few bytes at a time: half stuck in the headers,
    half in a body whose ``Content-Length`` is never reached (all in the headers with
    ``headers_only``). A context manager; the connections close on exit. ``closed_by_server``
    counts the ones the service cut."""

    def __init__(self, address: tuple[str, int], n: int, interval_s: float = 0.3, *, headers_only: bool = False) -> None:
        self.sockets: list[socket.socket] = []
        for i in range(n):
            sock = socket.create_connection(address, timeout=5)
            if i % 2 and not headers_only:
                sock.sendall(
                    b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n["
                )
            else:
                sock.sendall(b"POST /sc")
            self.sockets.append(sock)
        self.opened = n
        self.closed_by_server = 0
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def _trickle(self) -> None:
        while not self._stop.wait(self.interval_s):
            for sock in list(self.sockets):
                try:
                    sock.send(b"1")
                except OSError:
                    self.sockets.remove(sock)
                    self.closed_by_server += 1

    def __enter__(self) -> "SlowClients":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()
