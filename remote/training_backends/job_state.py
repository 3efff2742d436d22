"""A job's state on disk (``state.json``), shared by the job process and the backend.

Read-modify-write goes through an exclusive ``flock`` on ``state.lock`` and the file is
replaced atomically, so the job, a cancel from the CLI and the GUI never tear it.
Status survives restarts of the app because this file is the only source of truth.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
from pathlib import Path

from core.clock import utc_now_iso
from core.fileio import atomic_write_text
from remote.training_backends.base import TERMINAL, JobError, JobStatus

STATE_FILE = "state.json"


def now_iso() -> str:
    return utc_now_iso("milliseconds")


@contextlib.contextmanager
def _locked(path: Path):
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_state(path: Path) -> dict:
    """The state dict; JobError when the file is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise JobError(f"{path}: no such job state") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"{path}: unreadable job state ({exc.__class__.__name__})") from None


def _write(path: Path, state: dict) -> None:
    atomic_write_text(path, json.dumps(state, indent=2, sort_keys=True))


def init_state(path: Path, **fields) -> dict:
    """Create the state file (status Queued)."""
    path = Path(path)
    t = now_iso()
    state = {"status": JobStatus.QUEUED.value, "created": t, "updated": t, "history": [[JobStatus.QUEUED.value, t]]}
    state.update(fields)
    with _locked(path):
        _write(path, state)
    return state


def update_state(path: Path, status: JobStatus | None = None, *, force: bool = False, **fields) -> dict:
    """Set ``status`` (and other fields). A terminal status is final: later changes are ignored
    unless ``force`` (so a late write from a dying job cannot turn Canceled into Failed)."""
    path = Path(path)
    with _locked(path):
        state = read_state(path)
        current = JobStatus(state["status"])
        if current in TERMINAL and not force:
            return state
        t = now_iso()
        if status is not None and status.value != state["status"]:
            state["status"] = status.value
            state.setdefault("history", []).append([status.value, t])
        state.update(fields)
        state["updated"] = t
        _write(path, state)
    return state
