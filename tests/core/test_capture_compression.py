"""Compressed TIFF frames: read when a decoder exists, one clear line when not (fuzzing findings)."""
from __future__ import annotations

import importlib.util
import io
import struct

import numpy as np
import pytest
import tifffile

from core.capture_io import read_frame
from core.errors import CaptureError
from tests.support.ximea import real_xml

FRAME = (np.arange(64 * 50, dtype=np.uint16) % 1000).reshape(64, 50)
HAS_IMAGECODECS = importlib.util.find_spec("imagecodecs") is not None


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


@pytest.mark.skipif(not HAS_IMAGECODECS, reason="imagecodecs (a NeuroHSI dependency) is not installed here")
@pytest.mark.parametrize("compression", ["lzw", "packbits", "zstd"])
def test_imagecodecs_compressions_are_read(compression):
    frame, _ = read_frame(tiff(compression), name="x.tif")
    np.testing.assert_array_equal(frame, FRAME)


@pytest.mark.skipif(HAS_IMAGECODECS, reason="checks the message shown when imagecodecs is missing")
def test_lzw_without_imagecodecs_names_the_missing_package():
    with pytest.raises(CaptureError, match=r"^lzw\.tif: compression LZW needs the imagecodecs package"):
        read_frame(with_compression_tag(tiff(), 5), name="lzw.tif")


def test_truly_unknown_compression_is_named():
    with pytest.raises(CaptureError, match=r"^x\.tif: unsupported compression 60000$"):
        read_frame(with_compression_tag(tiff(), 60000), name="x.tif")
