"""Dataset integrity: decode every file before it is uploaded, verify the manifest before training.

Two checks, one on each end of the cloud round trip:

* :func:`check_dataset_files` (before ``cloud upload`` and the dialog's upload) reads
  every capture as training will: the three TIFFs fully decoded (a truncated white
  reference fails here, not in the job), the label PNG decoded with its ids
  checked against the class table, and its size against the cube.
* :func:`verify_manifest` (the training job, before training) recomputes the size and
  sha256 of every file listed in the uploaded ``manifest.json`` (the one
  ``remote.blob_storage`` writes last: ``{"files": [{"path", "size", "sha256"}]}``)
  and refuses a missing, changed or unlisted file.

Both raise :class:`core.errors.DatasetError` naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import CaptureError, DatasetError
from core.fileio import load_json_file

MANIFEST_FILE = "manifest.json"
CHUNK = 8 * 2**20


def sha256_of(path: str | Path) -> str:
    """sha256 hex of a file, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_capture(capture) -> dict[int, int]:
    """Decode one :class:`core.dataset.folders.DatasetCapture` completely; its labelled pixels per class id.

    DatasetError (naming the file) when a TIFF does not decode, the frames differ in
    shape, the label PNG does not decode or holds an id that is not a class, or the
    label map is not the cube's size.
    """
    from core.dataset.folders import read_capture_folder  # header-level checks: files present, label size

    read_capture_folder(capture.folder)  # cube and spectra captures: their arrays are read and checked here
    kind = getattr(capture, "kind", "raw")
    if kind == "spectra":
        ids, counts = np.unique(capture.load_spectra().class_ids, return_counts=True)
        return {int(i): int(n) for i, n in zip(ids, counts) if i > 0}
    if kind == "cube":
        from core.labels.maps import label_counts

        return label_counts(capture.load_labels())
    try:
        capture.load_capture()  # decodes every strip of raw, dark and white
    except CaptureError as exc:
        raise DatasetError(exc.path, exc.problem) from None
    labels = capture.load_labels()  # decodes the PNG and validates its ids (core.labels.maps.validate_labels)
    from core.labels.maps import label_counts

    return label_counts(labels)


def check_dataset_files(
    root: str | Path,
    capture_ids: set[str] | None = None,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, dict[int, int]]:
    """:func:`check_capture` of every capture of dataset ``root`` (or only ``capture_ids``).

    ``progress(done, total, capture_id)`` after each capture. Returns labelled
    pixels per class id, per capture id. Raises at the first bad file.
    """
    from core.dataset.folders import read_dataset

    captures = read_dataset(root)
    if capture_ids is not None:
        unknown = sorted(set(capture_ids) - {c.capture_id for c in captures})
        if unknown:
            raise DatasetError(root, f"no capture(s) {', '.join(unknown)}")
        captures = [c for c in captures if c.capture_id in capture_ids]
    out: dict[str, dict[int, int]] = {}
    for i, capture in enumerate(captures):
        out[capture.capture_id] = check_capture(capture)
        if progress is not None:
            progress(i + 1, len(captures), capture.capture_id)
    return out


def read_manifest(root: str | Path) -> dict:
    """``root/manifest.json`` as a dict with a ``files`` list; DatasetError when missing or malformed."""
    path = Path(root) / MANIFEST_FILE
    try:
        manifest = load_json_file(path, DatasetError)
    except FileNotFoundError:
        raise DatasetError(path, "no manifest: the dataset upload did not finish (run neurohsi cloud upload again)") from None
    except OSError as exc:
        raise DatasetError(path, f"unreadable manifest ({exc.__class__.__name__})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str) for e in files
    ):
        raise DatasetError(path, "manifest has no valid 'files' list of {path, size, sha256}")
    return manifest


def manifest_sha256(manifest: dict) -> str:
    """The dataset's identity: sha256 of its files' sorted (path, size, sha256) list, as canonical JSON.

    Two uploads of the same files give the same value, whatever the upload time or name.
    """
    files = sorted((e["path"], int(e.get("size") or 0), e["sha256"]) for e in manifest["files"])
    return hashlib.sha256(json.dumps(files, separators=(",", ":")).encode()).hexdigest()


def verify_manifest(root: str | Path, *, progress: Callable[[int, int], None] | None = None) -> dict:
    """Check every file of dataset folder ``root`` against its ``manifest.json``; returns the manifest.

    Refuses (DatasetError naming the file): a listed file that is missing, of another
    size or another sha256; a file in a capture folder that the manifest does not list;
    a path that leaves the folder. ``progress(bytes_done, bytes_total)``.
    """
    root = Path(root)
    manifest = read_manifest(root)
    entries = manifest["files"]
    listed = set()
    total = sum(int(e.get("size") or 0) for e in entries)
    done = 0
    resolved_root = root.resolve()
    for entry in entries:
        rel = entry["path"]
        path = root / rel
        if rel.startswith("/") or ".." in Path(rel).parts or not path.resolve().is_relative_to(resolved_root):
            raise DatasetError(root / MANIFEST_FILE, f"unsafe path {rel!r} in the manifest")
        listed.add(Path(rel).as_posix())
        if not path.is_file():
            raise DatasetError(path, "listed in the manifest but missing from the dataset")
        size = path.stat().st_size
        if entry.get("size") is not None and size != int(entry["size"]):
            raise DatasetError(path, f"is {size} bytes, the manifest says {entry['size']}: the dataset changed "
                                     "after upload")
        actual = sha256_of(path)
        if actual != entry["sha256"]:
            raise DatasetError(path, f"sha256 {actual[:12]}… does not match the manifest's "
                                     f"{entry['sha256'][:12]}…: the dataset changed after upload")
        done += size
        if progress is not None:
            progress(done, total)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and f"{folder.name}/{path.name}" not in listed:
                raise DatasetError(path, "is not in the manifest: the dataset changed after upload")
    return manifest
