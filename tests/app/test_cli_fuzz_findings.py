"""Bad input found by a fuzzing pass: each is one clear line, a non-zero exit, no traceback."""
from __future__ import annotations

import struct
import zlib

import pytest

from core.errors import CaptureError, one_line
from core.labels.maps import label_png_shape, read_label_png
from tests.support.cli import assert_one_line_error, neurohsi


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` greyscale pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(30000, 30000), (9000, 9000)])
def test_label_png_bomb_is_refused_before_decoding(tmp_path, size):
    from core.errors import DatasetError

    path = tmp_path / "labels.png"
    path.write_bytes(png_claiming(*size))
    for read in (read_label_png, label_png_shape):
        with pytest.raises(DatasetError, match=r"labels\.png: label map claims .*decompression bomb"):
            read(path)


def test_control_characters_in_names_are_escaped():
    line = one_line(CaptureError("scan\x1b[2J\x07.tif", "file not found"))
    assert line == "scan\\x1b[2J\\x07.tif: file not found" and "\x1b" not in line


def test_cli_error_with_control_characters_prints_escaped(tmp_path):
    name = tmp_path / "ID0001C01\x1b[31m.tif"
    result = neurohsi("info", name)
    assert "\x1b" not in result.stderr
    assert_one_line_error(result, "\\x1b[31m.tif", "file not found")


def test_train_output_that_is_a_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    (tmp_path / "dataset").mkdir()  # not even read: the output is checked first
    assert_one_line_error(neurohsi("train", tmp_path / "dataset", "-o", folder), "model.safetensors", "names a folder")
