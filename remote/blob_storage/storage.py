"""The :class:`BlobStorage` client: one container of one storage account; listing and small reads.

Uploads and downloads are its halves in :mod:`.upload` and :mod:`.download`.
"""
from __future__ import annotations

import hashlib
import json

from core.clock import to_utc_iso
from remote.blob_storage import layout
from remote.blob_storage.download import Downloads
from remote.blob_storage.errors import BlobNotFound, IntegrityError, StorageError, storage_errors
from remote.blob_storage.transfer import MiB, TransferStats
from remote.blob_storage.upload import Uploads
from remote.credentials import remember_secret, resolve_storage_connection_string


class BlobStorage(Uploads, Downloads):
    """One container of one storage account.

    Give a connection string, or an ``account_url`` with a ``credential`` (account key,
    SAS token or an azure-identity credential). With neither, the connection string is
    taken from env ``NEUROHSI_STORAGE_CONNECTION_STRING`` or the keyring.
    ``block_size`` bytes per staged block, ``max_concurrency`` parallel requests.
    """

    def __init__(
        self,
        connection_string: str | None = None,
        *,
        account_url: str | None = None,
        credential=None,
        container: str = layout.DEFAULT_CONTAINER,
        block_size: int = 4 * MiB,
        max_concurrency: int = 4,
        timeout_s: float = 20.0,
        retries: int = 2,
    ) -> None:
        if not isinstance(block_size, int) or not (1024 <= block_size <= 100 * MiB):
            raise StorageError(f"block_size must be 1 KiB..100 MiB, got {block_size!r}")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise StorageError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        layout.check_container_name(container)
        from azure.storage.blob import BlobServiceClient, LinearRetry

        # The SDK's default storage retry waits 15 s, 45 s, ... : far too long for an
        # interactive app; resuming the upload handles longer outages.
        options = dict(
            retry_policy=LinearRetry(backoff=1.0, random_jitter_range=0.5, retry_total=retries),
            connection_timeout=timeout_s,
            read_timeout=max(timeout_s, 60.0),
            max_block_size=block_size,
            max_single_get_size=block_size,
            max_chunk_get_size=block_size,
        )
        self._connection_string: str | None = None
        if account_url is None:
            connection_string = resolve_storage_connection_string(connection_string)
            if not connection_string:
                raise StorageError(
                    "no blob storage configured: give a connection string, set "
                    "NEUROHSI_STORAGE_CONNECTION_STRING or store 'storage-connection-string' in the keyring"
                )
            remember_secret(connection_string)
            self._connection_string = connection_string
            try:
                self._service = BlobServiceClient.from_connection_string(connection_string, **options)
            except ValueError as exc:
                raise StorageError(f"invalid storage connection string: {exc}") from None
        else:
            if isinstance(credential, str):
                remember_secret(credential)
            try:
                self._service = BlobServiceClient(account_url, credential=credential, **options)
            except ValueError as exc:
                raise StorageError(f"invalid storage account URL {account_url!r}: {exc}") from None
        self.container_name = container
        self.block_size = block_size
        self.max_concurrency = max_concurrency
        self._container = self._service.get_container_client(container)
        self.stats = TransferStats()

    # -- connection ---------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        return self._service.url.split("?")[0].rstrip("/")

    def connection_string_for_child(self) -> str:
        """The connection string, for a child process's environment (local training jobs)."""
        if self._connection_string is None:
            raise StorageError(
                "local training needs the storage connection string (account URL + identity cannot be handed "
                "to a subprocess): set NEUROHSI_STORAGE_CONNECTION_STRING or the keyring entry"
            )
        return self._connection_string

    def check(self, *, create: bool = True) -> None:
        """Make sure the account answers and the container exists (created when ``create``).

        Raises one :class:`StorageError` naming the problem: unreachable, wrong
        credentials, missing container.
        """
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        with self._errors("checking the container"):
            try:
                self._container.get_container_properties()
                return
            except ResourceNotFoundError:
                if not create:
                    raise StorageError(
                        f"container {self.container_name!r} does not exist at {self.account_url}"
                    ) from None
            try:
                self._container.create_container()
            except ResourceExistsError:  # created concurrently by someone else: fine
                pass

    def _errors(self, doing: str):
        """Context manager: SDK errors inside become one redacted :class:`StorageError` naming this container."""
        return storage_errors(doing, account_url=self.account_url, container=self.container_name)

    # -- listing ------------------------------------------------------------------------

    def list_datasets(self) -> list[layout.RemoteDataset]:
        """Datasets in the container, by name."""
        groups: dict[str, dict] = {}
        with self._errors("listing datasets"):
            for blob in self._container.list_blobs(name_starts_with=f"{layout.DATASETS}/"):
                parts = blob.name.split("/")
                if len(parts) < 3:
                    continue
                g = groups.setdefault(parts[1], {"captures": set(), "files": 0, "bytes": 0, "complete": False, "t": None})
                if len(parts) == 3 and parts[2] == layout.MANIFEST:
                    g["complete"] = True
                elif len(parts) == 4:
                    g["captures"].add(parts[2])
                    g["files"] += 1
                    g["bytes"] += blob.size
                g["t"] = max(filter(None, (g["t"], blob.last_modified)), default=None)
        return [
            layout.RemoteDataset(
                name=name,
                capture_ids=tuple(sorted(g["captures"])),
                n_files=g["files"],
                size_bytes=g["bytes"],
                complete=g["complete"],
                last_modified=to_utc_iso(g["t"]),
            )
            for name, g in sorted(groups.items())
        ]

    def list_models(self) -> list[layout.RemoteModel]:
        """Models in the container, by name then version."""
        models: dict[tuple[str, str], dict] = {}
        with self._errors("listing models"):
            for blob in self._container.list_blobs(name_starts_with=f"{layout.MODELS}/", include=["metadata"]):
                parts = blob.name.split("/")
                if len(parts) != 4:
                    continue
                m = models.setdefault((parts[1], parts[2]), {})
                if parts[3] == layout.MODEL_FILE:
                    m["blob"] = blob
                elif parts[3] == layout.METRICS_FILE:
                    m["metrics"] = True
        out = []
        for (name, version), m in sorted(models.items()):
            blob = m.get("blob")
            if blob is None:
                continue
            out.append(
                layout.RemoteModel(
                    name=name,
                    version=version,
                    size_bytes=blob.size,
                    sha256=(blob.metadata or {}).get(layout.SHA256_KEY),
                    last_modified=to_utc_iso(blob.last_modified),
                    has_metrics=bool(m.get("metrics")),
                )
            )
        return out

    def dataset_manifest(self, name: str) -> dict:
        """The manifest of an uploaded dataset (StorageError when it is missing or incomplete)."""
        layout.check_name(name, "dataset")
        return json.loads(self._get_bytes(f"{layout.DATASETS}/{name}/{layout.MANIFEST}", what=f"dataset {name!r}"))

    def model_metrics(self, name: str, version: str) -> dict | None:
        """The metrics.json stored beside a model, or None when there is none."""
        try:
            return json.loads(self._get_bytes(layout.model_blob(name, version, layout.METRICS_FILE), what="metrics"))
        except BlobNotFound:
            return None

    def _get_bytes(self, blob_name: str, *, what: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"reading {blob_name}"):
            try:
                downloader = self._container.get_blob_client(blob_name).download_blob()
            except ResourceNotFoundError:
                raise BlobNotFound(f"{what} not found ({blob_name!r} missing in {self.container_name!r})") from None
            data = downloader.readall()
            expected = (downloader.properties.metadata or {}).get(layout.SHA256_KEY)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise IntegrityError(f"blob {blob_name!r} is corrupted: sha256 does not match")
        return data

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose name starts with ``prefix``; return how many."""
        n = 0
        with self._errors(f"deleting {prefix}"):
            for blob in self._container.list_blobs(name_starts_with=prefix):
                self._container.delete_blob(blob.name)
                n += 1
        return n
