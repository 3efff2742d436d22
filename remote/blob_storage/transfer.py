"""Pieces shared by uploads and downloads: content digests, block ids, counters, progress, parallel runs."""
from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MiB = 1024 * 1024
_HASH_CHUNK = 8 * MiB

Progress = Callable[[int, int], None]
"""progress(bytes_done, bytes_total), called from worker threads."""


@dataclass
class TransferStats:
    """Counters of what actually went over the wire (tests check resumption with them)."""

    blocks_staged: int = 0
    blocks_reused: int = 0  # staged before (an interrupted upload), not sent again
    blocks_skipped: int = 0  # in files already committed with the same sha256
    bytes_sent: int = 0
    files_skipped: int = 0
    files_committed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


class ProgressCounter:
    """Bytes done of ``total``, added from several threads; each addition calls ``callback``."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.callback is not None:
            self.callback(done, self.total)


def stream_digests(fh: BinaryIO, *, md5: bool = True) -> tuple[str, bytes | None]:
    """(sha256 hex, md5 bytes or None) of what ``fh`` holds from its current position, read in 8 MiB chunks."""
    sha = hashlib.sha256()
    md = hashlib.md5(usedforsecurity=False) if md5 else None
    while chunk := fh.read(_HASH_CHUNK):
        sha.update(chunk)
        if md is not None:
            md.update(chunk)
    return sha.hexdigest(), None if md is None else md.digest()


def file_digests(path: Path, *, md5: bool = True) -> tuple[str, bytes | None]:
    """(sha256 hex, md5 bytes or None) of a file."""
    with open(path, "rb") as fh:
        return stream_digests(fh, md5=md5)


def block_id(sha256_hex: str, block_size: int, index: int) -> str:
    """Block id for block ``index``: tied to the file content and the block size, same length for all."""
    # 48 bytes before base64: the service limit is 64 characters for the encoded id.
    raw = f"{sha256_hex[:32]}-{block_size:08x}-{index:06d}"
    return base64.b64encode(raw.encode("ascii")).decode("ascii")


def run_all(pool: ThreadPoolExecutor, tasks: list[Callable[[], None]]) -> None:
    """Run tasks on the pool; on the first failure cancel what has not started and re-raise it."""
    futures = [pool.submit(task) for task in tasks]
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    failed = [f for f in done if f.exception() is not None]
    if failed:
        for f in pending:
            f.cancel()
        wait(pending)
        raise failed[0].exception()
