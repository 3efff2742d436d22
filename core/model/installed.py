"""The installed model and its history: one Qt-free store in the models folder.

``<models_dir>/history.json`` (written atomically, under a lock file so the CLI and
a running GUI never interleave) holds every install and revert, newest last, and
the last version number handed out per base name. The installed model is the
``path`` of the newest entry ("" = the bundled demo model); no entry at all means
nothing was ever installed. ``classify`` and ``watch`` without ``--model``, the GUI,
live mode and ``serve`` read it through :func:`core.model.choice.resolve_model`;
the retraining dialog and ``neurohsi model`` change it through :class:`ModelStore`,
so a revert made anywhere is seen everywhere (also after a restart).

Every change goes through :meth:`ModelStore.record` — the one place an audit log
hooks in. :meth:`ModelStore.reconcile` repairs what a killed install leaves: a
complete model file missing from the history (listed, never deleted: it may be
wanted) and partial temporary files (removed).
"""
from __future__ import annotations

import contextlib
import getpass
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from core.clock import utc_now_iso
from core.errors import ModelFileError
from core.fileio import TMP_SUFFIX, atomic_write, atomic_write_text, neurohsi_home

HISTORY_FILE = "history.json"
LOCK_FILE = ".history.lock"
MODEL_SUFFIX = ".safetensors"
_NAME_PART = re.compile(r"[^A-Za-z0-9._-]+")


def default_models_dir() -> Path:
    """``NEUROHSI_HOME/models``: where installs go and what classify reads."""
    return neurohsi_home() / "models"


def who() -> str:
    """The login name recorded with a change ("unknown" where there is none, e.g. in containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class HistoryEntry:
    """One change of the installed model: ``action`` "install" or "revert".

    ``path`` is the model file installed by this change ("" = the bundled demo model);
    ``label`` its ``name vversion (sha)``; ``previous`` the model before the change.
    ``verdict`` is the comparison's one line (or why there was none); ``override``
    the reason typed to install a model that is worse on tumour ("" when none was needed).
    """

    action: str
    path: str
    label: str
    previous: str
    when: str  # ISO 8601 UTC
    name: str = ""
    version: str = ""  # the model's own version number (handed out by :meth:`ModelStore.next_version`)
    sha256: str = ""
    user: str = ""
    verdict: str = ""
    override: str = ""
    via: str = ""  # "gui" or "cli"

    @property
    def shown(self) -> str:
        """``name vN`` for screens ("the bundled demo model" for the demo)."""
        if not self.path:
            return "the bundled demo model"
        return f"{self.name} v{self.version}" if self.name else Path(self.path).name


@dataclass(frozen=True)
class Reconciliation:
    """What :meth:`ModelStore.reconcile` found: complete models not in the history, temporary files removed."""

    orphans: tuple[Path, ...]
    removed: tuple[Path, ...]


def model_name(base: str, dataset: str, date: str | None = None) -> str:
    """``<base>-<dataset>-<YYYYMMDD>`` with characters a job spec refuses replaced by '-'."""
    day = (date or utc_now_iso())[:10].replace("-", "")
    parts = [_NAME_PART.sub("-", p).strip("-") for p in (base or "conv2dnet", dataset, day)]
    return "-".join(p for p in parts if p)[:120]


class ModelStore:
    """The installed model and the install history of one models folder (default :func:`default_models_dir`)."""

    def __init__(self, models_dir: str | Path | None = None) -> None:
        self.models_dir = (Path(models_dir).expanduser() if models_dir is not None else default_models_dir()).absolute()
        self.path = self.models_dir / HISTORY_FILE

    # ---- reading
    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError):
            return {"entries": [], "versions": {}}
        if not isinstance(data, dict):
            return {"entries": [], "versions": {}}
        if not isinstance(data.get("entries"), list):
            data["entries"] = []
        if not isinstance(data.get("versions"), dict):
            data["versions"] = {}
        return data

    def entries(self) -> list[HistoryEntry]:
        """Every change, oldest first (hand-edited entries that do not parse are skipped, not fatal)."""
        known = {f.name for f in fields(HistoryEntry)}
        out = []
        for e in self._read()["entries"]:
            if not isinstance(e, dict):
                continue
            try:
                out.append(HistoryEntry(**{k: str(v) for k, v in e.items() if k in known}))
            except TypeError:
                continue
        return out

    def current(self) -> HistoryEntry | None:
        """The newest change (its ``path`` is the installed model); None when nothing was ever installed."""
        entries = self.entries()
        return entries[-1] if entries else None

    def current_path(self) -> Path | None:
        """The installed model file; None for "nothing installed" and for the demo model ("" in the history)."""
        entry = self.current()
        return Path(entry.path) if entry is not None and entry.path else None

    def stamp(self) -> tuple[int, int] | None:
        """(mtime_ns, size) of history.json: cheap to poll, changes with every install or revert."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def revert_target(self, version: str | None = None) -> HistoryEntry | None:
        """The change a revert would go back to, or None when there is nothing to go back to.

        Without ``version``: the model in use before the current one was installed
        (the installing entry's ``previous``, followed through earlier reverts). With
        ``version``: the newest installed model of that version number (or ``name vN``).
        """
        entries = self.entries()
        if not entries:
            return None
        if version is not None:
            wanted = str(version).strip().lstrip("vV")
            for e in reversed(entries):
                if e.action == "install" and (e.version == wanted or f"{e.name} v{e.version}" == str(version).strip()):
                    return e
            return None
        current = entries[-1].path
        for e in reversed(entries):
            if e.action == "install" and e.path == current:
                return self._entry_for(e.previous, entries)
        return None

    @staticmethod
    def _entry_for(path: str, entries: list[HistoryEntry]) -> HistoryEntry:
        """The newest entry naming ``path`` (for its name and version), or a bare one ("" = demo)."""
        for e in reversed(entries):
            if e.path == path:
                return e
        return HistoryEntry("install", path, "", "", "")

    # ---- writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        """Read-modify-write history.json under an exclusive lock (the CLI and the GUI may both write)."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with open(self.models_dir / LOCK_FILE, "a+b") as lock:
            try:
                import fcntl  # POSIX; elsewhere the atomic write alone keeps the file whole

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows
                pass
            data = self._read()
            yield data
            atomic_write_text(self.path, json.dumps(data, indent=2) + "\n")

    def next_version(self, base: str) -> int:
        """Hand out the next version number of models named from ``base`` (1, 2, 3...)."""
        with self._locked() as data:
            version = int(data["versions"].get(base, 0) or 0) + 1
            data["versions"][base] = version
        return version

    def record(self, entry: HistoryEntry) -> HistoryEntry:
        """Append one install or revert to the history: the one place every change is recorded.

        The audit log (:mod:`core.audit`) gets one entry here too: every install and revert, from the GUI
        or the CLI, passes once.
        """
        from core.audit.events import record_model_change

        if entry.action not in ("install", "revert"):
            raise ValueError(f"history action must be install or revert, got {entry.action!r}")
        with self._locked() as data:
            data["entries"].append(asdict(entry))
        record_model_change("model_installed" if entry.action == "install" else "model_reverted", entry.path,
                            entry.label, entry.previous or None)
        return entry

    def install(self, src: str | Path, *, name: str | None = None, verdict: str = "", override: str = "",
                via: str = "cli") -> HistoryEntry:
        """Copy model file ``src`` into the folder (never replacing a file), verify it, make it the installed one.

        ``name`` is the file stem (default ``<model name>-v<version>``; ``-2``, ``-3``... when taken).
        The copy is loaded before it is recorded: a corrupt file never becomes the installed model.
        """
        from core.model.files import load_model

        src = Path(src)
        info = load_model(src).info  # a corrupt or foreign file is refused before anything is written
        previous = self.current()
        path = self._copy_in(src, name or f"{info.name}-v{info.version}")
        load_model(path)
        return self.record(HistoryEntry(
            "install", str(path), info.label, "" if previous is None else previous.path, utc_now_iso(),
            name=info.name, version=str(info.version), sha256=info.sha256, user=who(), verdict=verdict,
            override=override, via=via))

    def revert(self, version: str | None = None, *, via: str = "cli") -> HistoryEntry:
        """Make the model before the current one (or the installed one of ``version``) the installed one again."""
        target = self.revert_target(version)
        if target is None:
            what = f"no installed model of version {version}" if version is not None else "nothing to revert to"
            raise ModelFileError(self.path, what)
        if target.path and not Path(target.path).is_file():
            raise ModelFileError(target.path, "cannot revert to it: the model file is gone")
        current = self.current()
        return self.record(HistoryEntry(
            "revert", target.path, target.label, "" if current is None else current.path, utc_now_iso(),
            name=target.name, version=target.version, sha256=target.sha256, user=who(), via=via))

    def _copy_in(self, src: Path, name: str) -> Path:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        stem = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name) or "model"
        dest = self.models_dir / f"{stem}{MODEL_SUFFIX}"
        n = 2
        while dest.exists():
            dest = self.models_dir / f"{stem}-{n}{MODEL_SUFFIX}"
            n += 1
        return atomic_write(dest, src.read_bytes())  # models are small (about 50 KB)

    # ---- after a crash
    def reconcile(self, *, remove_temp: bool = True) -> Reconciliation:
        """Find what a killed install left: models not in the history (listed) and temporary files (removed).

        Temporary files are partial copies (:func:`core.fileio.atomic_write` replaces
        the real file only when complete), so removing them loses nothing.
        """
        if not self.models_dir.is_dir():
            return Reconciliation((), ())
        known = {str(Path(e.path)) for e in self.entries() if e.path}
        orphans = tuple(sorted(p for p in self.models_dir.glob(f"*{MODEL_SUFFIX}") if str(p) not in known))
        stale = sorted(p for p in self.models_dir.glob(f".*{TMP_SUFFIX}") if p.is_file())
        if remove_temp:
            for p in stale:
                p.unlink(missing_ok=True)
        return Reconciliation(orphans, tuple(stale))
