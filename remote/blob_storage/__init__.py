"""Datasets and models in an Azure Blob container: chunked, verified, resumable transfers.

Layout in the container (:mod:`.layout`)::

    datasets/<name>/<capture_id>/<file>        raw.tif, dark.tif, white.tif, labels.png, meta.json
    datasets/<name>/manifest.json              written last: files, sizes, sha256 (marks a complete upload)
    models/<name>/<version>/model.safetensors
    models/<name>/<version>/metrics.json       optional

Every uploaded blob carries its sha256 in metadata (``sha256``); each staged block
carries its MD5, checked by the service on arrival (:mod:`.upload`). Downloads
recompute the sha256 and refuse a blob that does not match (:mod:`.download`).

Modules: ``storage`` (the :class:`BlobStorage` client, listing), ``upload``,
``download``, ``transfer`` (digests, block ids, counters), ``layout`` (names),
``errors`` (one redacted line per failure).
"""
from __future__ import annotations

from remote.blob_storage.errors import BlobNotFound, IntegrityError, StorageError
from remote.blob_storage.layout import (
    DATASETS,
    DEFAULT_CONTAINER,
    MANIFEST,
    METRICS_FILE,
    MODEL_FILE,
    MODELS,
    SHA256_KEY,
    RemoteDataset,
    RemoteModel,
    check_name,
    dataset_files,
)
from remote.blob_storage.storage import BlobStorage
from remote.blob_storage.transfer import MiB, Progress, TransferStats, block_id, file_digests

__all__ = [
    "BlobNotFound", "BlobStorage", "DATASETS", "DEFAULT_CONTAINER", "IntegrityError", "MANIFEST", "METRICS_FILE",
    "MODELS", "MODEL_FILE", "MiB", "Progress", "RemoteDataset", "RemoteModel", "SHA256_KEY", "StorageError",
    "TransferStats", "block_id", "check_name", "dataset_files", "file_digests",
]
