"""Installed models: names with an incrementing version, a history of installs, one-click revert (no Qt).

``<models_dir>/history.json`` (written atomically) holds every install and revert,
newest last, and the last version handed out per base name. A new model's name is
``<base>-<dataset>-<YYYYMMDD>`` and its version the next integer for ``<base>``,
handed out when training starts, so two trainings never share a version.
Reverting makes the default model what it was before the current one was installed.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from core import defaults
from core.clock import utc_now_iso
from core.fileio import atomic_write_text

HISTORY_FILE = "history.json"
_NAME_PART = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class HistoryEntry:
    """One change of the default model: ``action`` "install" or "revert"."""

    action: str
    path: str  # the model file now the default ("" = the bundled demo model)
    label: str  # name vversion (sha) of that model, "" for the demo
    previous: str  # the default before this change ("" = the bundled demo model)
    when: str  # ISO 8601 UTC


def model_name(base: str, dataset: str, date: str | None = None) -> str:
    """``<base>-<dataset>-<YYYYMMDD>`` with characters a job spec refuses replaced by '-'."""
    day = (date or utc_now_iso())[:10].replace("-", "")
    parts = [_NAME_PART.sub("-", p).strip("-") for p in (base or defaults.MODEL_NAME, dataset, day)]
    return "-".join(p for p in parts if p)[:120]


class ModelHistory:
    """The install history of one models folder."""

    def __init__(self, models_dir: str | Path) -> None:
        self.models_dir = Path(models_dir)
        self.path = self.models_dir / HISTORY_FILE

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"entries": [], "versions": {}}
        if not isinstance(data, dict):
            return {"entries": [], "versions": {}}
        data.setdefault("entries", [])
        data.setdefault("versions", {})
        return data

    def _write(self, data: dict) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(data, indent=2))

    def entries(self) -> list[HistoryEntry]:
        out = []
        for e in self._read()["entries"]:
            try:
                out.append(HistoryEntry(**e))
            except TypeError:
                continue  # a hand-edited entry: skip it rather than lose the rest
        return out

    def next_version(self, base: str) -> int:
        """Hand out the next version number of models named from ``base`` (1, 2, 3...)."""
        data = self._read()
        version = int(data["versions"].get(base, 0)) + 1
        data["versions"][base] = version
        self._write(data)
        return version

    def record(self, action: str, path: str | Path | None, label: str, previous: str | None) -> HistoryEntry:
        entry = HistoryEntry(action, "" if path is None else str(path), label, previous or "", utc_now_iso())
        data = self._read()
        data["entries"].append(asdict(entry))
        self._write(data)
        return entry

    def revert_target(self, current: str | None) -> str | None:
        """The default model before ``current`` was installed ("" = demo), or None when there is none to go back to."""
        current = current or ""
        for entry in reversed(self.entries()):
            if entry.path == current and entry.action == "install":
                return entry.previous
        return None
