"""Writing captures into a watched folder as acquisition software does (tests and the live benchmark)."""
from __future__ import annotations

import time
from pathlib import Path


def write_progressively(path: Path, data: bytes, *, chunks: int = 10, pause_s: float = 0.08) -> float:
    """Write ``data`` (real TIFF bytes, as tifffile writes them) in ``chunks`` pieces, flushed, with
    pauses between; returns ``time.perf_counter()`` right after the last byte was flushed."""
    size = -(-len(data) // chunks)
    with open(path, "wb") as f:
        for k in range(chunks):
            f.write(data[k * size : (k + 1) * size])
            f.flush()
            if k < chunks - 1:
                time.sleep(pause_s)
        return time.perf_counter()


def write_whole(path: Path, data: bytes) -> Path:
    """Write ``data`` in one go; returns ``path``."""
    Path(path).write_bytes(data)
    return Path(path)
