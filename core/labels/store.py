"""Saving and recovering labels of one capture folder (numpy + Pillow, no Qt).

:func:`save_labels` writes ``labels.png`` and ``meta.json`` atomically
(:func:`core.fileio.atomic_write`: temporary file in the same folder, fsync,
``os.replace``); :func:`write_recovery` / :func:`read_recovery` keep an autosaved
copy, ``.labels.recovery.png``, next to them until the labels are saved.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from core.classes import CLASS_IDS
from core.clock import utc_now_iso
from core.errors import DatasetError
from core.labels.maps import label_png_bytes, write_label_png
from core.fileio import atomic_write, atomic_write_text, load_json_file, stale_temp_files

RECOVERY_NAME = ".labels.recovery.png"
LABELS_NAME = "labels.png"
META_NAME = "meta.json"
RECOVERED_DIR = "recovered"  # recovery files the user declined or that could not be read


def recovery_path(folder: str | Path) -> Path:
    """``<folder>/.labels.recovery.png``: the autosave file of one capture folder."""
    return Path(folder) / RECOVERY_NAME


def _read_png(path: Path) -> tuple[np.ndarray, dict[str, str]]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DatasetError(path, f"label PNG must be a palette or grey image, got mode {image.mode}")
            labels = np.asarray(image, dtype=np.uint8).copy()
            text = dict(getattr(image, "text", {}) or {})
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or garbled files raise any of these
        raise DatasetError(path, f"cannot read label PNG ({exc.__class__.__name__}: {exc})") from None
    if labels.size and int(labels.max()) > max(CLASS_IDS):
        raise DatasetError(path, f"label PNG holds unknown class id {int(labels.max())}")
    return labels, text


def write_recovery(folder: str | Path, labels: np.ndarray, *, info: dict | None = None) -> Path:
    """Autosave ``labels`` uint8 ``(H, W)`` to ``<folder>/.labels.recovery.png`` (atomic).

    ``info`` (JSON-able, e.g. author, prelabel model) is stored in the PNG with the save time.
    """
    path = recovery_path(folder)
    meta = {"saved": utc_now_iso(), **(info or {})}
    data = label_png_bytes(labels, text={"neurohsi-recovery": json.dumps(meta)})
    atomic_write(path, lambda fh: fh.write(data))
    return path


def read_recovery(folder: str | Path) -> tuple[np.ndarray, dict] | None:
    """The autosaved labels and their info, or ``None`` when there is no recovery file.

    Raises ``DatasetError`` naming the file when it is damaged (see :func:`set_aside_recovery`).
    """
    path = recovery_path(folder)
    if not path.is_file():
        return None
    labels, text = _read_png(path)
    try:
        meta = json.loads(text.get("neurohsi-recovery", "{}"))
    except (ValueError, RecursionError):  # damaged provenance text: the recovered labels still count
        meta = {}
    return labels, meta if isinstance(meta, dict) else {}


def recovery_pending(folder: str | Path) -> bool:
    """True when a recovery file exists and is newer than ``labels.png`` (or there is no labels.png)."""
    rec = recovery_path(folder)
    if not rec.is_file():
        return False
    saved = Path(folder) / LABELS_NAME
    return not saved.is_file() or rec.stat().st_mtime_ns > saved.stat().st_mtime_ns


def set_aside_recovery(folder: str | Path, *, why: str = "discarded") -> Path | None:
    """Move the recovery file to ``<folder>/recovered/labels-<why>-<UTC time>.png``; never delete it.

    Used when the user declines to restore it or when it cannot be read, so work a
    user threw away by mistake can still be found. Returns the new path (None when
    there was no recovery file).
    """
    src = recovery_path(folder)
    if not src.is_file():
        return None
    aside = Path(folder) / RECOVERED_DIR
    aside.mkdir(exist_ok=True)
    stamp = utc_now_iso().replace(":", "")  # no ':' in file names (Windows)
    dest = aside / f"labels-{why}-{stamp}.png"
    n = 1
    while dest.exists():
        n += 1
        dest = aside / f"labels-{why}-{stamp}-{n}.png"
    src.replace(dest)
    return dest


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete temporary files an interrupted save or autosave left in ``folder``; returns them.

    They are partial copies (:func:`core.fileio.atomic_write` replaces the real
    file only once the copy is complete), so nothing is lost by removing them.
    """
    removed = []
    for name in (LABELS_NAME, META_NAME, RECOVERY_NAME):
        for path in stale_temp_files(folder, name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def reconcile_counts(folder: str | Path) -> bool:
    """Make ``meta.json``'s label counts agree with ``labels.png`` (True when they had to be fixed).

    :func:`save_labels` writes labels.png, then meta.json: a process killed between
    the two leaves the old counts beside the new map. Both copies are fixed:
    ``labels.counts`` (the labelling tool's) and ``label_counts`` (the dataset writer's).
    Nothing to do without both files; a meta.json that is not a JSON object is left
    for the dataset checks to report.
    """
    folder = Path(folder)
    labels_path, meta_path = folder / LABELS_NAME, folder / META_NAME
    if not (labels_path.is_file() and meta_path.is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(meta, dict):
        return False
    labels, _ = _read_png(labels_path)
    counts = np.bincount(labels.reshape(-1), minlength=max(CLASS_IDS) + 1)
    actual = {str(c): int(counts[c]) for c in CLASS_IDS}
    stale = False
    if isinstance(meta.get("labels"), dict) and meta["labels"].get("counts") != actual:
        meta["labels"]["counts"] = actual
        meta["labels"]["counts_fixed"] = utc_now_iso()  # says the counts were repaired after an interrupted save
        stale = True
    if "label_counts" in meta and meta["label_counts"] != actual:  # the dataset writer's copy
        meta["label_counts"] = actual
        stale = True
    if not stale:
        return False
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return True


def save_labels(
    folder: str | Path,
    labels: np.ndarray,
    *,
    author: str,
    os_user: str | None = None,
    first_edit: str | None = None,
    last_edit: str | None = None,
    prelabel_model: Mapping[str, str] | None = None,
    tool_version: str | None = None,
) -> Path:
    """Write ``labels.png`` and update ``meta.json`` in a dataset capture folder, each atomically.

    ``labels`` uint8 ``(H, W)`` class ids. Provenance recorded under
    ``meta["labels"]``: ``author`` (display name) and ``os_user`` (login name) of
    who drew them; ``first_edit`` / ``last_edit`` (ISO 8601 UTC; the earliest
    ``first_edit`` already in meta.json is kept); ``saved`` (now); ``tool_version`` (the app's version, e.g. from
    :func:`app.build_info.app_version`);
    ``from_prediction`` and ``prelabel_model`` ({name, version, sha256} of the model
    whose prediction the labels started from, or null); ``counts`` (pixels per
    class id "1".."5"). meta.json keeps its other keys. Files get the default
    permissions (0644 under the usual umask) so other accounts can read them. The
    recovery file is removed once both files are in place. Returns the labels path.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "capture folder does not exist")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 (H, W), got {labels.dtype} {labels.shape}")
    if not str(author).strip():
        raise ValueError("author must not be empty")
    model = None
    if prelabel_model is not None:
        missing = {"name", "version", "sha256"} - set(prelabel_model)
        if missing:
            raise ValueError(f"prelabel_model needs name, version and sha256; missing {sorted(missing)}")
        model = {k: str(prelabel_model[k]) for k in ("name", "version", "sha256")}
    meta_path = folder / META_NAME
    meta: dict = {}
    if meta_path.is_file():
        meta = load_json_file(meta_path, DatasetError)
        if not isinstance(meta, dict):
            raise DatasetError(meta_path, "must hold a JSON object")
    previous = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    now = utc_now_iso()
    firsts = [t for t in (previous.get("first_edit"), first_edit) if isinstance(t, str)]
    counts = np.bincount(labels.reshape(-1), minlength=max(CLASS_IDS) + 1)
    meta["labels"] = {
        "author": str(author).strip(),
        "os_user": os_user,
        "first_edit": min(firsts) if firsts else None,  # ISO 8601 UTC strings sort by time
        "last_edit": last_edit or previous.get("last_edit"),
        "saved": now,
        "tool_version": tool_version,
        "from_prediction": model is not None,
        "prelabel_model": model,
        "counts": {str(c): int(counts[c]) for c in CLASS_IDS},
    }
    if "label_counts" in meta:  # a dataset folder's own copy must not go stale either
        meta["label_counts"] = dict(meta["labels"]["counts"])
    labels_path = folder / LABELS_NAME
    write_label_png(labels_path, labels)  # the one label-PNG writer (atomic)
    atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    recovery_path(folder).unlink(missing_ok=True)  # its content is now in labels.png
    from core.audit.events import record

    record("labels_saved", capture=folder.name, folder=str(folder), author=meta["labels"]["author"],
           counts=meta["labels"]["counts"], prelabel_model_sha256=None if model is None else model["sha256"])
    return labels_path
