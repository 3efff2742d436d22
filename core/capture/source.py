"""Where live captures come from: the :class:`CaptureSource` interface and a watched folder.

A source is polled (``poll()`` never blocks long) and answers with events:
:class:`NewCapture` (a complete raw frame with the references to use),
:class:`ReferencesChanged` (a newer dark/white pair replaced the old one),
:class:`Skipped` (complete captures passed over because a newer one is ready) and
:class:`SourceProblem` (a file that stays unreadable). No Qt, no threads here:
:mod:`core.model.live` calls ``poll()`` on its reader thread.

:class:`WatchedFolder` polls the folder with ``os.scandir`` (portable, no extra
dependency). A file counts only when it is complete: its size and mtime did not
change over ``settle_s`` AND the TIFF parses fully (:func:`core.capture.files.read_frame`
reads every pixel strip; a file cut short fails). Acquisition software writes
progressively, so a half-written file is simply looked at again on the next poll.
"""
from __future__ import annotations

import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.capture.files import Capture, read_frame
from core.errors import CaptureError
from core.capture.metadata import CaptureMetadata

# IDxxxxCyy (raw), IDxxxxCDyy (dark), IDxxxxCWyy (white): the NEMESIS names.
_NEMESIS = re.compile(r"^(?P<id>ID\d+)C(?P<kind>[DW]?)(?P<n>\d+)\.tiff?$", re.IGNORECASE)
_RECHECK_EVERY = 10  # polls between two looks at a handled file (for an in-place rewrite)
UNREADABLE_AFTER_S = 5.0  # a stable file that still does not parse after this is reported, once


@dataclass(frozen=True)
class References:
    """A dark/white pair: frames ``(rows, cols)`` uint8/uint16 and where they came from."""

    dark: np.ndarray
    white: np.ndarray
    dark_path: Path | None
    white_path: Path | None
    # Their own metadata: live captures get the same reference checks (exposure, gain...) as opened ones.
    dark_metadata: CaptureMetadata | None = None
    white_metadata: CaptureMetadata | None = None

    @property
    def name(self) -> str:
        return f"{self.dark_path.name if self.dark_path else 'dark'} / {self.white_path.name if self.white_path else 'white'}"


def read_references(dark: Path, white: Path) -> References:
    """A dark/white pair read from files, with their metadata."""
    dark_frame, dark_meta = read_frame(dark)
    white_frame, white_meta = read_frame(white)
    return References(dark_frame, white_frame, Path(dark), Path(white), dark_meta, white_meta)


@dataclass(frozen=True)
class NewCapture:
    """A complete raw frame and its references, as a :class:`core.capture.files.Capture`."""

    capture: Capture
    complete_at: float  # time.perf_counter() when the file was found complete
    read_s: float = 0.0  # reading and checking the raw frame (s)


@dataclass(frozen=True)
class ReferencesChanged:
    references: References
    replaced: References | None  # None for the first pair of the session


@dataclass(frozen=True)
class Skipped:
    """Complete captures not classified because a newer one was ready first."""

    paths: tuple[Path, ...]


@dataclass(frozen=True)
class SourceProblem:
    path: Path
    message: str  # one line, names the file


SourceEvent = NewCapture | ReferencesChanged | Skipped | SourceProblem


class CaptureSource(ABC):
    """Something that produces complete captures (a watched folder; later a camera)."""

    @abstractmethod
    def poll(self) -> list[SourceEvent]:
        """What happened since the last call, oldest first; returns quickly."""

    def close(self) -> None:
        """Release what the source holds (nothing by default)."""


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # perf_counter when (size, mtime) was first observed
    done: bool = False  # emitted, skipped or reported: not looked at again unless replaced (new inode)
    inode: int = 0
    slot: int = 0  # re-stat'ed, once handled, on polls where polls % _RECHECK_EVERY == slot


class WatchedFolder(CaptureSource):
    """Complete NEMESIS-named captures arriving in ``folder``, newest first.

    ``references``: a (dark, white) pair of TIFF paths to use for the whole session;
    without it the folder's own pairs are used: a raw ``IDxxxxCyy`` takes its
    ``IDxxxxCDyy``/``IDxxxxCWyy`` when they are there (it waits while they are being
    written), else the newest complete pair seen. A newer pair arriving replaces the
    current one and is announced (:class:`ReferencesChanged`); a pair given here is
    never replaced. Files already in the folder at start are not classified, but
    the newest pair among them becomes the current references.
    With ``newest_only`` (the live default) only the newest complete raw frame of a
    poll is read; older complete ones are reported as :class:`Skipped`.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        references: tuple[str | Path, str | Path] | None = None,
        settle_s: float = 0.05,
        newest_only: bool = True,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CaptureError(self.folder, "folder to watch not found")
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.settle_s = float(settle_s)
        self.newest_only = newest_only
        self._seen: dict[str, _Seen] = {}
        self._names: dict[str, re.Match | None] = {}  # every name in the folder -> its NEMESIS match (or None)
        self._polls = 0
        self._fixed = references is not None
        self._references: References | None = None
        self._pending: list[SourceEvent] = []
        self._reported: set[str] = set()
        if references is not None:
            dark, white = (Path(p) for p in references)
            self._set_references(read_references(dark, white))
        self._scan(initial=True)

    @property
    def references(self) -> References | None:
        return self._references

    # ------------------------------------------------------------------ polling

    def poll(self) -> list[SourceEvent]:
        self._scan(initial=False)
        events, self._pending = self._pending, []
        return events

    def _scan(self, *, initial: bool) -> None:
        # Polled every 20-50 ms in a folder that can hold thousands of files: per entry
        # only a dict lookup unless the file is new or still settling. The listing itself
        # is kept (no directory-mtime shortcut: on network shares the folder's attributes
        # are cached by the client for seconds); names are matched once, and a file already
        # handled is stat'ed only every _RECHECK_EVERY polls (rewritten in place: seen within
        # ~0.2 s) or at once when replaced (renamed over: a new inode).
        now = time.perf_counter()
        self._polls += 1
        slot = self._polls % _RECHECK_EVERY
        stable: list[tuple[int, str, re.Match]] = []  # (mtime_ns, name, match) of settled, unhandled files
        present: dict[str, _Seen] = {}
        names: dict[str, re.Match | None] = {}
        known_names, seen_before = self._names, self._seen
        with os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                match = known_names[name] if name in known_names else _NEMESIS.match(name)
                names[name] = match
                if match is None:
                    continue
                seen = seen_before.get(name)
                if seen is not None and seen.done and seen.inode == entry.inode() and seen.slot != slot:
                    present[name] = seen  # handled, not replaced, not its turn to be re-checked for a rewrite
                    continue
                try:
                    st = entry.stat()
                except OSError:  # removed between listing and stat
                    continue
                if seen is None or (seen.size, seen.mtime_ns, seen.inode) != (st.st_size, st.st_mtime_ns, st.st_ino):
                    seen = _Seen(st.st_size, st.st_mtime_ns, now, inode=st.st_ino, slot=len(present) % _RECHECK_EVERY)
                present[name] = seen
                if not seen.done and st.st_size > 0 and (initial or now - seen.since >= self.settle_s):
                    stable.append((st.st_mtime_ns, name, match))
        self._names = names  # only the names present now: bounded by the folder
        self._seen = present
        self._reported &= present.keys()
        stable.sort(reverse=True)  # newest first
        self._take_references(stable, now)
        raws = [(m, name, match) for m, name, match in stable if not match["kind"]]
        if initial:
            for _, name, _ in raws:
                self._seen[name].done = True  # there before we started: not a new capture
            return
        skipped: list[Path] = []
        for _, name, match in raws:
            if self._seen[name].done:
                continue
            event = self._try_capture(name, match, now)
            if event is None:
                continue
            self._seen[name].done = True
            if isinstance(event, NewCapture):
                self._pending.append(event)
                if self.newest_only:
                    for _, older, _ in raws:
                        if not self._seen[older].done and older != name:
                            self._seen[older].done = True
                            skipped.append(self.folder / older)
                    break
            else:
                self._pending.append(event)
        if skipped:
            # Reported before the capture that superseded them: events stay oldest first.
            self._pending.insert(len(self._pending) - 1, Skipped(tuple(reversed(skipped))))

    def _take_references(self, stable, now: float) -> None:
        """Make the newest complete dark/white pair current (unless a pair was given)."""
        if self._fixed:
            return
        refs = {(m["id"].upper(), m["n"], m["kind"].upper()): name for _, name, m in stable if m["kind"]}
        for _, name, match in stable:  # newest first
            if match["kind"].upper() != "D":
                continue
            white = refs.get((match["id"].upper(), match["n"], "W"))
            if white is None:
                continue
            pair = self._read_pair(name, white, now)
            if pair is not None:
                self._seen[name].done = self._seen[white].done = True
                self._set_references(pair)
                return

    def _read_pair(self, dark: str, white: str, now: float) -> References | None:
        try:
            dark_frame, dark_meta = read_frame(self.folder / dark)
            white_frame, white_meta = read_frame(self.folder / white)
        except CaptureError as exc:
            self._unreadable(dark, exc, now)
            return None
        if dark_frame.shape != white_frame.shape:
            self._report(dark, f"{self.folder / white}: white reference shape {white_frame.shape} differs from "
                               f"dark {dark_frame.shape}")
            self._seen[dark].done = self._seen[white].done = True
            return None
        return References(dark_frame, white_frame, self.folder / dark, self.folder / white, dark_meta, white_meta)

    def _set_references(self, references: References) -> None:
        self._pending.append(ReferencesChanged(references, self._references))
        self._references = references

    def _try_capture(self, name: str, match: re.Match, now: float) -> SourceEvent | None:
        """A :class:`NewCapture` if ``name`` is complete and has references; None to look again later."""
        path = self.folder / name
        references = self._references
        if not self._fixed:
            own = [self.folder / f"{match['id']}C{k}{match['n']}{path.suffix}" for k in ("D", "W")]
            if all(p.exists() for p in own) and (references is None or references.dark_path != own[0]):
                try:  # its own pair, not the current one (an older capture): read it for this capture only
                    references = read_references(own[0], own[1])
                except CaptureError:
                    return None  # being written: look again on the next poll
        start = time.perf_counter()
        try:
            frame, metadata = read_frame(path)
        except CaptureError as exc:
            self._unreadable(name, exc, now)
            return None
        read_s = time.perf_counter() - start
        if references is None:
            return SourceProblem(path, f"{path}: no dark/white references yet (IDxxxxCDyy / IDxxxxCWyy in the folder)")
        if references.dark.shape != frame.shape:
            return SourceProblem(path, f"{path}: frame {frame.shape} does not match the references {references.dark.shape}")
        return NewCapture(_capture(path, frame, metadata, references), time.perf_counter(), read_s)

    def _unreadable(self, name: str, exc: CaptureError, now: float) -> None:
        """Still being written, most likely; report once if it stays broken while its size does not change."""
        seen = self._seen[name]
        if now - seen.since >= UNREADABLE_AFTER_S:
            seen.done = True
            self._report(name, str(exc))

    def _report(self, name: str, message: str) -> None:
        if name not in self._reported:
            self._reported.add(name)
            self._pending.append(SourceProblem(self.folder / name, message))


def _capture(path: Path, frame: np.ndarray, metadata: CaptureMetadata | None, references: References) -> Capture:
    return Capture(frame, references.dark, references.white, metadata, path, references.dark_path,
                   references.white_path, path.stem, references.dark_metadata, references.white_metadata)
