"""The one-of-each helpers: atomic_write, utc_now_iso, one_line, defaults."""
from __future__ import annotations

import os
import re
import stat

import pytest

from core import defaults, fileio
from core.clock import utc_now_iso
from core.errors import CaptureError, one_line
from core.redaction import forget_secrets, remember_secret


def test_atomic_write_replaces_whole_file_readable_by_others(tmp_path):
    target = tmp_path / "labels.png"
    target.write_bytes(b"old")
    old_umask = os.umask(0o022)
    try:
        fileio.atomic_write(target, b"new contents")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert fileio.stale_temp_files(tmp_path, "labels.png") == []


def test_atomic_write_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "meta.json"
    target.write_text("{}")

    def boom(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        fileio.atomic_write(target, boom)
    assert target.read_text() == "{}"
    assert fileio.stale_temp_files(tmp_path, "meta.json") == []


def test_utc_now_iso_is_utc_with_z():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now_iso())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now_iso("milliseconds"))


def test_one_line_names_file_and_redacts_secrets():
    forget_secrets()
    remember_secret("s3cr3t-endpoint-key")
    try:
        err = CaptureError("/data/ID1C01.tif", "bad\nthing with s3cr3t-endpoint-key and AccountKey=abc123;x")
        text = one_line(err)
    finally:
        forget_secrets()
    assert text == "/data/ID1C01.tif: bad thing with *** and AccountKey=***;x"
    assert one_line(FileNotFoundError(2, "No such file or directory", "/x.tif")) == "/x.tif: No such file or directory"
    assert one_line(KeyError("k")).startswith("unexpected KeyError")


def test_thesis_defaults():
    assert (defaults.PATCH_SIZE, defaults.BATCH_SIZE, defaults.LEARNING_RATE, defaults.EPOCHS, defaults.FOLDS) == (
        7, 16, 1e-3, 100, 5)
