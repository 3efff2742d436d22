"""Camera captures (``IDxxxxCyy.tif`` + ``CDyy`` + ``CWyy``) made into dataset capture folders.

The labelling tool keeps a camera capture's labels in ``<folder>/IDxxxxCyy/``
beside the frames. Training and uploads read ``DATASET/<capture_id>/{raw,dark,
white}.tif``, so once labels are saved the frames are copied into that folder
(:func:`adopt_capture_files`): the folder holding the camera files is then a
dataset the retraining dialog lists. :func:`why_not_a_capture` says, for a folder
that is not usable, which file is missing and how to fix it.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from core.clock import utc_now_iso
from core.fileio import atomic_write, atomic_write_text

FRAME_NAMES = ("raw.tif", "dark.tif", "white.tif")
_PATIENT = re.compile(r"^(ID\d+)C\d+$", re.IGNORECASE)


def adopt_capture_files(folder: str | Path, raw: str | Path, dark: str | Path, white: str | Path) -> list[Path]:
    """Copy the triplet into ``folder`` as raw/dark/white.tif (each atomically; existing files are kept).

    meta.json gains ``capture_id``, ``patient`` (the ``IDxxxx`` part) and ``source``
    (the original file names) where it lacks them. Returns the frames written.
    """
    folder = Path(folder)
    written = []
    for src, name in zip((raw, dark, white), FRAME_NAMES):
        dest = folder / name
        if dest.is_file():
            continue
        with open(src, "rb") as fh_in:
            atomic_write(dest, lambda fh, f=fh_in: shutil.copyfileobj(f, fh))
        written.append(dest)
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except (OSError, ValueError, RecursionError):
        meta = None  # a broken meta.json is reported by the dataset checks, never overwritten here
    if isinstance(meta, dict):
        match = _PATIENT.match(folder.name)
        changed = {k: v for k, v in (
            ("capture_id", folder.name), ("patient", match[1] if match else None),
            ("source", {"raw": Path(raw).name, "dark": Path(dark).name, "white": Path(white).name,
                        "copied": utc_now_iso()})) if v is not None and k not in meta}
        if changed:
            meta.update(changed)
            atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return written


def camera_files_for(folder: Path) -> Path | None:
    """The camera raw file a labels folder ``<dir>/<IDxxxxCyy>/`` belongs to (``<dir>/IDxxxxCyy.tif``), if there."""
    for suffix in (".tif", ".tiff"):
        candidate = folder.parent / f"{folder.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def why_not_a_capture(folder: str | Path) -> str | None:
    """Why ``folder`` (holding labels.png) cannot be trained on, in one line; None when its frames are there."""
    folder = Path(folder)
    missing = [n for n in FRAME_NAMES if not (folder / n).is_file()]
    if not missing:
        return None
    raw = camera_files_for(folder)
    if raw is not None and "raw.tif" in missing:
        return (f"labels saved beside {raw.name} by an older version, without its frames: "
                f"open {raw.name}, label (Ctrl+L) and Save again to copy them in")
    return f"missing {', '.join(missing)}"
