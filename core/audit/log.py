"""An append-only, hash-chained audit log in SQLite, with its chain head kept in a second file.

Each entry stores ``prev_hash`` (the previous entry's hash; 64 zeros for the first)
and ``hash = sha256(canonical JSON of seq, at, os_user, operator, event, details, prev_hash)``.
Changing any entry breaks its hash; removing one breaks the sequence and the next
entry's ``prev_hash``. Removing the *last* entries, or truncating the file, leaves a
valid but shorter chain: the head file (``<log>.head``: JSON ``{"log_id", "seq", "hash"}``,
rewritten atomically with every entry) catches that. Triggers refuse UPDATE and
DELETE so ordinary tools cannot edit the log by mistake; anyone who bypasses them is
found by :meth:`AuditLog.verify`.

When an append finds the head file and the log disagree (someone removed entries
since the last write) it first appends an ``integrity_break`` entry recording both,
so the evidence stays in the chain even after the head is rewritten.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from core.clock import utc_now_iso
from core.errors import NeuroHSIError
from core.fileio import atomic_write_text

GENESIS = "0" * 64
INTEGRITY_BREAK = "integrity_break"
_BUSY_TIMEOUT_S = 10.0  # the GUI and a CLI command may append at once; SQLite serialises them

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    os_user TEXT NOT NULL,
    operator TEXT NOT NULL,
    event TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS log_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class AuditError(NeuroHSIError, OSError):
    """The audit log cannot be opened or written."""


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log. ``at`` ISO 8601 UTC; ``details`` JSON-ready, no image data, no secrets."""

    seq: int
    at: str
    os_user: str
    operator: str
    event: str
    details: dict
    prev_hash: str
    hash: str

    def to_dict(self) -> dict:
        return asdict(self)


def entry_hash(seq: int, at: str, os_user: str, operator: str, event: str, details_json: str, prev_hash: str) -> str:
    """The chain hash of one entry (hex sha256 of its canonical JSON)."""
    body = json.dumps([seq, at, os_user, operator, event, details_json, prev_hash], separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def canonical_json(details: Mapping) -> str:
    """``details`` as the one JSON text that is hashed and stored (sorted keys, no spaces)."""
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class AuditLog:
    """The log at ``path`` (SQLite) with its head at ``path + ".head"``; both created on first append."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")

    # -- writing --------------------------------------------------------------------
    def append(self, event: str, details: Mapping, *, os_user: str, operator: str = "") -> AuditEntry:
        """Add one entry (validated by the caller: :func:`core.audit.events.record`) and move the head."""
        if not event or not isinstance(event, str):
            raise ValueError(f"audit event must be a non-empty string, got {event!r}")
        details_json = canonical_json(details)
        # Owner only: exported entries name patients, and the log stays on this machine.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
                log_id = self._log_id(db)
                last = db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (0, GENESIS) if last is None else (int(last[0]), str(last[1]))
                head = self._read_head()
                if _head_disagrees(head, log_id, seq, prev):
                    # Entries were removed (or the head file lost) since the last append: keep that on record.
                    seq, prev = self._insert(
                        db, seq, prev, INTEGRITY_BREAK,
                        canonical_json({"head_file": head, "log_last_seq": seq, "log_last_hash": prev}),
                        os_user=os_user, operator=operator,
                    )
                seq, prev = self._insert(db, seq, prev, event, details_json, os_user=os_user, operator=operator)
                # Head before commit: a crash in between leaves the head ahead, which verify reports.
                atomic_write_text(self.head_path, json.dumps({"log_id": log_id, "seq": seq, "hash": prev}))
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot write the audit log ({exc})") from None
        return self.entries(since=seq)[-1]

    def _insert(self, db, seq: int, prev: str, event: str, details_json: str, *, os_user: str, operator: str):
        seq += 1
        at = utc_now_iso()
        digest = entry_hash(seq, at, os_user, operator, event, details_json, prev)
        db.execute(
            "INSERT INTO entries (seq, at, os_user, operator, event, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?)",
            (seq, at, os_user, operator, event, details_json, prev, digest),
        )
        return seq, digest

    # -- reading --------------------------------------------------------------------
    def entries(self, *, since: int = 1, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``seq >= since`` in order (all by default); [] when there is no log yet."""
        if not self.path.exists():
            return []
        try:
            with self._connect() as db:
                rows = db.execute(
                    "SELECT seq, at, os_user, operator, event, details, prev_hash, hash FROM entries "
                    "WHERE seq >= ? ORDER BY seq LIMIT ?",
                    (since, -1 if limit is None else int(limit)),
                ).fetchall()
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot read the audit log ({exc})") from None
        return [_entry(row) for row in rows]

    def verify(self) -> list[str]:
        """Every problem found, one line each; ``[]`` when the chain is whole and ends at the head.

        Finds changed entries (hash), removed entries (sequence gap, ``prev_hash``),
        removed last entries and truncation (head file), and recorded integrity breaks.
        """
        problems: list[str] = []
        head = self._read_head()
        if not self.path.exists():
            return [f"{self.path}: the audit log is missing but its head file says it had {head.get('seq')} entries"] if head else []
        try:
            with self._connect() as db:
                log_id = (db.execute("SELECT value FROM log_info WHERE key = 'log_id'").fetchone() or [None])[0]
                rows = db.execute(
                    "SELECT seq, at, os_user, operator, event, details, prev_hash, hash FROM entries ORDER BY seq"
                ).fetchall()
        except sqlite3.Error as exc:
            return [f"{self.path}: the audit log cannot be read ({exc}): truncated or damaged"]
        seq, prev = 0, GENESIS
        for row in rows:
            n, at, user, operator, event, details_json, prev_hash, digest = row
            if n != seq + 1:
                problems.append(f"entry {seq + 1}" + (f" to {n - 1}" if n - 1 > seq + 1 else "") + " removed")
            if prev_hash != prev:
                problems.append(f"entry {n}: does not follow entry {seq} (an entry before it was removed or changed)")
            if entry_hash(n, at, user, operator, event, details_json, prev_hash) != digest:
                problems.append(f"entry {n} ({event}, {at}): content changed after it was written")
            if event == INTEGRITY_BREAK:
                problems.append(f"entry {n} ({at}): an earlier append found entries removed ({details_json})")
            seq, prev = n, digest
        if head is None:
            if rows:
                problems.append(f"{self.head_path}: head file missing; the log's end cannot be checked")
        elif head.get("log_id") != log_id:
            problems.append(f"{self.head_path}: the head file belongs to another audit log (log replaced?)")
        elif head.get("seq") != seq or head.get("hash") != prev:
            problems.append(
                f"the log ends at entry {seq} but its head file says entry {head.get('seq')}: "
                "last entries removed or the log truncated"
            )
        return problems

    def export(self, out: str | Path) -> Path:
        """Write the whole log for the hospital's records: ``.csv`` (one row per entry) or ``.json``.

        The JSON form also carries the verification result; both carry every hash, so the
        copy can be checked against the log later. Written atomically.
        """
        out = Path(out)
        if out.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"{out}: export as .csv or .json")
        entries = self.entries()
        if out.suffix.lower() == ".json":
            problems = self.verify()
            doc = {"log": str(self.path), "exported_at": utc_now_iso(), "verified": not problems,
                   "problems": problems, "entries": [e.to_dict() for e in entries]}
            return atomic_write_text(out, json.dumps(doc, indent=1, ensure_ascii=False))
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["seq", "at", "os_user", "operator", "event", "details", "prev_hash", "hash"])
        for e in entries:
            writer.writerow([e.seq, e.at, e.os_user, e.operator, e.event, canonical_json(e.details), e.prev_hash, e.hash])
        return atomic_write_text(out, buf.getvalue())

    # -- internals ------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        db.executescript(_SCHEMA)
        return _Closing(db)

    def _log_id(self, db) -> str:
        row = db.execute("SELECT value FROM log_info WHERE key = 'log_id'").fetchone()
        if row is not None:
            return str(row[0])
        log_id = uuid.uuid4().hex
        db.execute("INSERT INTO log_info (key, value) VALUES ('log_id', ?)", (log_id,))
        return log_id

    def _read_head(self) -> dict | None:
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"unreadable": True}
        return head if isinstance(head, dict) else {"unreadable": True}


def _head_disagrees(head: dict | None, log_id: str, seq: int, last_hash: str) -> bool:
    if head is None:
        return seq > 0  # entries but no head: the head file was removed
    return head.get("log_id") != log_id or head.get("seq") != seq or head.get("hash") != last_hash


def _entry(row) -> AuditEntry:
    seq, at, user, operator, event, details_json, prev_hash, digest = row
    try:
        details = json.loads(details_json)
    except ValueError:
        details = {"unreadable": details_json[:200]}
    return AuditEntry(int(seq), at, user, operator, event, details, prev_hash, digest)


class _Closing:
    """A connection used in ``with``: rolled back on error, always closed (sqlite3's own ``with`` never closes)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and self._db.in_transaction:
                self._db.rollback()
        finally:
            self._db.close()
