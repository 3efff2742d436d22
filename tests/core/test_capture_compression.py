"""Compressed TIFF frames: read when a decoder exists, one clear line when not (fuzzing findings)."""
from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from core.capture.files import read_frame
from core.errors import CaptureError
from tests.support.ximea import real_xml

ROOT = Path(__file__).resolve().parents[2]
FRAME = (np.arange(64 * 50, dtype=np.uint16) % 1000).reshape(64, 50)


def tiff(compression=None) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, FRAME, compression=compression, description=real_xml(active_wh=(50, 64)), metadata=None)
    return buffer.getvalue()


def with_compression_tag(data: bytes, value: int) -> bytes:
    """The same file with its Compression tag (259) set to ``value`` (pixels untouched)."""
    data = bytearray(data)
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 259:
            data[entry + 8 : entry + 10] = struct.pack("<H", value)
            return bytes(data)
    raise AssertionError("no Compression tag")


@pytest.mark.parametrize("compression", ["zlib", "lzma"])
def test_compressions_python_reads_alone(compression):
    frame, meta = read_frame(tiff(compression), name="x.tif")
    np.testing.assert_array_equal(frame, FRAME)
    assert meta.serial == "CAMAU1912007"


@pytest.mark.parametrize("compression", ["lzw", "packbits", "zstd"])
def test_imagecodecs_compressions_are_read(compression):
    frame, _ = read_frame(tiff(compression), name="x.tif")
    np.testing.assert_array_equal(frame, FRAME)


def test_lzw_without_imagecodecs_names_the_missing_package(tmp_path):
    # A broken install: tifffile falls back to its own small codec module, as it does without
    # imagecodecs. In a fresh process, since tifffile caches its decoders on first use.
    path = tmp_path / "lzw.tif"
    path.write_bytes(tiff("lzw"))
    script = (
        "import tifffile._imagecodecs as fallback, tifffile.tifffile as t; t.imagecodecs = fallback\n"
        "from core.capture.files import read_frame\n"
        f"read_frame({str(path)!r})\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode != 0
    assert re.search(r"CaptureError: .*lzw\.tif: compression LZW needs the imagecodecs package", run.stderr), run.stderr


def test_truly_unknown_compression_is_named():
    with pytest.raises(CaptureError, match=r"^x\.tif: unsupported compression 60000$"):
        read_frame(with_compression_tag(tiff(), 60000), name="x.tif")
