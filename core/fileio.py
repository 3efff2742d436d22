"""Atomic file writes: either the old file or the complete new one exists at every moment.

Every file NeuroHSI writes that a user or another process may read while it is
being replaced (label maps, ``meta.json``, job state, exports, downloaded models)
goes through :func:`atomic_write`.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None], *, mode: int | None = None) -> Path:
    """Write ``path`` through a temporary file in the same folder, fsync, then ``os.replace``.

    ``data`` is the bytes to write or a function that writes into the open binary
    file (opened for reading too, so it can check what it wrote before the replace;
    raising there leaves the old file). On any error the temporary file is removed and the old file is left
    untouched. ``mode`` (e.g. ``0o644``) sets the permissions of the new file;
    by default it gets ``0o666`` less the process umask, as ``open()`` would give.
    The temporary file is named ``.<name>.<random>.tmp`` (see :func:`stale_temp_files`).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as fh:  # readable too: a writer may verify what it wrote
            if callable(data):
                data(fh)
            else:
                fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, text.encode("utf-8"), mode=mode)


def stale_temp_files(folder: str | Path, name: str) -> list[Path]:
    """Temporary files :func:`atomic_write` left for ``folder/name`` when a process died mid-write."""
    return sorted(Path(folder).glob(f".{name}.*{TMP_SUFFIX}"))


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where the platform cannot (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def neurohsi_home() -> Path:
    """Per-user data folder (env ``NEUROHSI_HOME`` overrides, as in the CLI and tests).

    Local jobs, installed models, the audit log and the PACS outbox live under it.
    """
    env = os.environ.get("NEUROHSI_HOME")
    return Path(env) if env else Path.home() / ".local" / "share" / "neurohsi"


def _default_mode() -> int:
    # mkstemp creates 0600 files; a saved file should be readable as open() would make it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def parse_json(text: str | bytes, path: str | Path, error: Callable[[str | Path, str], Exception]) -> object:
    """``json.loads(text)``; ``error(path, problem)`` for anything that is not JSON we can hold.

    Besides malformed text, Python's parser fails in ways ``JSONDecodeError`` does not
    cover: ``RecursionError`` for arrays nested ~1000 deep, ``ValueError`` "Exceeds the
    limit (4300 digits)" for a huge integer. All become one line naming ``path``.
    """
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise error(path, "not valid JSON we can read (nested too deeply)") from None
    except UnicodeDecodeError:
        raise error(path, "not valid JSON (not UTF-8 text)") from None
    except ValueError as exc:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        detail = "a number with more than 4300 digits" if "digits" in str(exc) else str(exc)[:100]
        raise error(path, f"not valid JSON we can read ({detail})") from None


def load_json_file(path: str | Path, error: Callable[[str | Path, str], Exception]) -> object:
    """The parsed JSON of the file at ``path`` (see :func:`parse_json`); ``OSError`` when it cannot be read."""
    return parse_json(Path(path).read_bytes(), path, error)
