"""Objects waiting for the PACS: kept on disk, retried with backoff, never lost on restart.

The outbox is a folder (default ``$NEUROHSI_HOME/pacs_outbox``) of pairs
``<n>-<SOP Instance UID>.dcm`` + the same name ``.json`` (attempts, next try, last error,
capture). ``<n>`` keeps the order objects were added, so an SC is sent before the SEG
that references it. Every write is atomic; a ``.dcm`` without its ``.json`` (a crash
between the two) is picked up as a new item, a ``.json`` without its ``.dcm`` is dropped.

:func:`flush` sends the items that are due through :func:`remote.pacs.node.store`; a
failure moves an item's next try out by ``backoff_s(attempts)`` (30 s doubling to 1 h).
Each object sent is recorded in the audit log (``sent``). One flush at a time per outbox,
across processes and threads (an exclusive lock on ``.flush.lock`` in the folder): a second
flush started meanwhile (the GUI's retry timer beside ``neurohsi dicom-send``) sends nothing
and says so, so no object reaches the PACS twice.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.clock import utc_now_iso
from core.errors import one_line
from core.fileio import atomic_write, atomic_write_text, neurohsi_home
from remote.pacs.node import PacsError, PacsNode, store

BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 3600.0
FLUSH_LOCK = ".flush.lock"


def default_outbox_dir() -> Path:
    return neurohsi_home() / "pacs_outbox"


def backoff_s(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed tries: 30, 60, 120 ... at most 3600."""
    if attempts <= 0:
        return 0.0
    return min(BACKOFF_FIRST_S * 2 ** (attempts - 1), BACKOFF_MAX_S)


@dataclass(frozen=True)
class OutboxItem:
    """One waiting object: its file and state. ``next_try_at`` seconds since the epoch."""

    path: Path
    attempts: int = 0
    next_try_at: float = 0.0
    last_error: str = ""
    added_at: str = ""
    capture: str = ""
    kind: str = ""

    def due(self, now: float) -> bool:
        return self.next_try_at <= now


@dataclass
class FlushReport:
    sent: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    waiting: int = 0  # items still in the outbox afterwards
    busy: bool = False  # another flush was sending the outbox: this one sent nothing

    def line(self, node_label: str) -> str:
        if self.busy:
            return f"the outbox is being sent by another NeuroHSI window or command; {self.waiting} waiting in it"
        parts = [f"{len(self.sent)} sent to {node_label}"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({next(iter(self.failed.values()))})")
        if self.waiting:
            parts.append(f"{self.waiting} waiting in the outbox")
        return "; ".join(parts)


class Outbox:
    """The outbox folder; safe to use from the GUI and a CLI command one after the other."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_outbox_dir()

    def add(self, source: str | Path, *, capture: str = "", kind: str = "") -> OutboxItem:
        """Copy the DICOM file ``source`` into the outbox (due now)."""
        from pydicom import dcmread

        source = Path(source)
        uid = str(dcmread(source, stop_before_pixels=True).SOPInstanceUID)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner only: the objects carry patient data
        existing = sorted(self.folder.glob("*.dcm"))
        n = 1 + max((int(p.name.split("-", 1)[0]) for p in existing if p.name.split("-", 1)[0].isdigit()), default=0)
        dest = self.folder / f"{n:06d}-{uid}.dcm"
        atomic_write(dest, lambda fh: _copy(source, fh))
        item = OutboxItem(dest, added_at=utc_now_iso(), capture=capture, kind=kind)
        self._save(item)
        return item

    def items(self) -> list[OutboxItem]:
        """Every waiting object, oldest first."""
        if not self.folder.is_dir():
            return []
        out = []
        for state in self.folder.glob("*.json"):
            if not state.with_suffix(".dcm").exists():
                state.unlink(missing_ok=True)  # sent, then a crash before its state was removed
        for path in sorted(self.folder.glob("*.dcm")):
            out.append(self._load(path))
        return out

    def flush(
        self,
        node: PacsNode,
        *,
        now: float | None = None,
        force: bool = False,
        sender: Callable[[PacsNode, Sequence[Path]], dict[Path, str | None]] = store,
    ) -> FlushReport:
        """Send the due items (all with ``force``) over one association; failures wait ``backoff_s``.

        While another flush of this outbox runs (any process), nothing is sent: ``report.busy``.
        """
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _exclusive(self.folder / FLUSH_LOCK) as held:
            if not held:
                return FlushReport(waiting=len(self.items()), busy=True)
            return self._flush(node, time.time() if now is None else now, force, sender)

    def _flush(self, node: PacsNode, now: float, force: bool, sender) -> FlushReport:
        items = [i for i in self.items() if force or i.due(now)]
        report = FlushReport()
        if items:
            try:
                results = sender(node, [i.path for i in items])
            except (PacsError, OSError) as exc:
                reason = one_line(exc)
                results = {i.path: reason for i in items}
            for item in items:
                error = results.get(item.path, "not sent")
                if error is None:
                    self._sent(item, node)
                    report.sent.append(item.path)
                else:
                    attempts = item.attempts + 1
                    self._save(OutboxItem(item.path, attempts, now + backoff_s(attempts), error, item.added_at,
                                          item.capture, item.kind))
                    report.failed[item.path] = error
        report.waiting = len(self.items())
        return report

    def next_due(self) -> float | None:
        """When the next item is due (epoch seconds), None when the outbox is empty."""
        items = self.items()
        return min((i.next_try_at for i in items), default=None)

    # -- internals -------------------------------------------------------------------
    def _sent(self, item: OutboxItem, node: PacsNode) -> None:
        from core.audit.events import record

        record("sent", file=item.path.name.split("-", 1)[-1], capture=item.capture, kind=item.kind,
               pacs=node.label, attempts=item.attempts + 1)
        item.path.unlink(missing_ok=True)
        item.path.with_suffix(".json").unlink(missing_ok=True)

    def _save(self, item: OutboxItem) -> None:
        state = {"attempts": item.attempts, "next_try_at": item.next_try_at, "last_error": item.last_error,
                 "added_at": item.added_at, "capture": item.capture, "kind": item.kind}
        atomic_write_text(item.path.with_suffix(".json"), json.dumps(state))

    def _load(self, path: Path) -> OutboxItem:
        try:
            state = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            return OutboxItem(path, int(state.get("attempts", 0)), float(state.get("next_try_at", 0.0)),
                              str(state.get("last_error", "")), str(state.get("added_at", "")),
                              str(state.get("capture", "")), str(state.get("kind", "")))
        except (OSError, ValueError, TypeError, AttributeError):
            return OutboxItem(path)  # state lost: the object itself is what matters, send it now


@contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs: yields True, or
    False at once when another process or thread holds it. Where the OS has no ``flock`` (not
    POSIX), yields True: one NeuroHSI at a time is then the user's to ensure."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _copy(source: Path, fh) -> None:
    with open(source, "rb") as src:
        shutil.copyfileobj(src, fh)
