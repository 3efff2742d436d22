"""Seeded corpus of malformed inputs for the fuzz suite (issue 26): byte mutations of valid files
written by the real writers, and helpers to rewrite a model file's metadata.

Nothing is committed: every input is generated in the test from a seed.
"""
from __future__ import annotations

import json
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np


def mutants(data: bytes, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` (description, bytes) mutations of ``data``: truncations, byte flips, 32-bit fields set to
    huge or zero values, chunks inserted, deleted or duplicated. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out = []
    size = len(data)
    for i in range(n):
        op = i % 6
        buf = bytearray(data)
        at = int(rng.integers(0, max(1, size - 4)))
        if op == 0:
            cut = int(rng.integers(0, size))
            out.append((f"truncated at {cut}", bytes(buf[:cut])))
            continue
        if op == 1:
            for _ in range(int(rng.integers(1, 9))):
                k = int(rng.integers(0, size))
                buf[k] ^= int(rng.integers(1, 256))
            desc = "bytes flipped"
        elif op == 2:
            # Header fields (sizes, offsets, counts) are where readers trust the file most.
            at = int(rng.integers(0, min(size - 4, 512)))
            buf[at:at + 4] = struct.pack("<I", int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0, 1 << 20])))
            desc = f"32-bit field at {at} set"
        elif op == 3:
            buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
            desc = f"bytes inserted at {at}"
        elif op == 4:
            del buf[at:at + int(rng.integers(1, 64))]
            desc = f"bytes deleted at {at}"
        else:
            length = int(rng.integers(1, 256))
            buf[at:at] = buf[at:at + length]
            desc = f"chunk duplicated at {at}"
        out.append((desc, bytes(buf)))
    return out


def peak_bytes(function: Callable[[], object]) -> tuple[object, int]:
    """``(outcome, peak traced bytes)`` of ``function()``; the outcome is its result or the exception raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        try:
            outcome = function()
        except Exception as exc:  # noqa: BLE001 - the caller judges the exception
            outcome = exc
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def model_header(data: bytes) -> tuple[dict, bytes]:
    """(safetensors JSON header, tensor bytes) of a model file's bytes."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def model_bytes(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + body


def with_meta(data: bytes, change: Callable[[dict], None], *, replace: tuple[str, str] | None = None) -> bytes:
    """A model file's bytes with its NeuroHSI metadata changed by ``change(meta)``, then text
    ``replace[0]`` replaced by ``replace[1]`` in the metadata JSON (for what json.dumps cannot write)."""
    header, body = model_header(data)
    meta = json.loads(header["__metadata__"]["neurohsi"])
    change(meta)
    text = json.dumps(meta)
    header["__metadata__"]["neurohsi"] = text if replace is None else text.replace(*replace)
    return model_bytes(header, body)


def with_scaled_weights(data: bytes, factor: float) -> bytes:
    """A model file's bytes with every float32 weight multiplied by ``factor`` (float32 arithmetic)."""
    header, body = model_header(data)
    body = bytearray(body)
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        values = np.frombuffer(bytes(body[start:end]), np.float32) * np.float32(factor)
        body[start:end] = values.astype(np.float32).tobytes()
    return model_bytes(header, bytes(body))


def nested(depth: int) -> str:
    """JSON text nested ``depth`` arrays deep (Python's parser gives up near 1000)."""
    return "[" * depth + "]" * depth


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
