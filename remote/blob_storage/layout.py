"""Where things live in the container, which names are allowed, and what a listing returns.

Layout::

    datasets/<name>/<capture_id>/<file>        raw.tif, dark.tif, white.tif, labels.png, meta.json
    datasets/<name>/manifest.json              written last: files, sizes, sha256 (marks a complete upload)
    models/<name>/<version>/model.safetensors
    models/<name>/<version>/metrics.json       optional
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from remote.blob_storage.errors import StorageError

DEFAULT_CONTAINER = "neurohsi"
DATASETS = "datasets"
MODELS = "models"
MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
SHA256_KEY = "sha256"  # blob metadata key holding the sha256 hex of the content

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CONTAINER_RE = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    capture_ids: tuple[str, ...]
    n_files: int
    size_bytes: int
    complete: bool  # the manifest, written last, is there
    last_modified: str | None  # ISO 8601 UTC


@dataclass(frozen=True)
class RemoteModel:
    name: str
    version: str
    size_bytes: int
    sha256: str | None
    last_modified: str | None
    has_metrics: bool = False


def check_name(name: str, what: str) -> str:
    """``name`` when it is a safe dataset/model/version name, else :class:`StorageError`."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StorageError(f"invalid {what} name {name!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return name


def check_container_name(container: str) -> str:
    """``container`` when Azure accepts it (3-63 lower-case letters, digits, single '-'), else StorageError."""
    if not isinstance(container, str) or not _CONTAINER_RE.fullmatch(container):
        raise StorageError(f"invalid container name {container!r}: 3-63 lower-case letters, digits and '-'")
    return container


def model_blob(name: str, version: str, file: str = MODEL_FILE) -> str:
    """``models/<name>/<version>/<file>`` after checking the names."""
    check_name(name, "model")
    check_name(str(version), "model version")
    return f"{MODELS}/{name}/{version}/{file}"


def dataset_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path ``<capture_id>/<file>``, absolute path) of a dataset folder's files."""
    from core.dataset.folders import read_dataset
    from core.errors import DatasetError

    if not folder.is_dir():
        raise DatasetError(folder, "not a dataset folder")
    out = []
    for cdir in (Path(c.folder) for c in read_dataset(folder)):
        for path in sorted(cdir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                out.append((f"{cdir.name}/{path.name}", path))
    if not out:
        raise DatasetError(folder, "no capture folders (<capture_id>/raw.tif ...) found")
    return out
