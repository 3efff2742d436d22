"""Datasets and models in an Azure Blob container: chunked, verified, resumable transfers.

Layout in the container::

    datasets/<name>/<capture_id>/<file>        raw.tif, dark.tif, white.tif, labels.png, meta.json
    datasets/<name>/manifest.json              written last: files, sizes, sha256 (marks a complete upload)
    models/<name>/<version>/model.safetensors
    models/<name>/<version>/metrics.json       optional

Every uploaded blob carries its sha256 in metadata (``sha256``); each staged block
carries its MD5, checked by the service on arrival, and single-block files also get
the blob's Content-MD5.
Uploads stage fixed-size blocks (ids derived from the file's sha256, the block size
and the block index) on several threads and commit the block list; an interrupted
upload resumes from the blocks the service already holds (``get_block_list``), and a
file already committed with the same sha256 is not sent again. Downloads recompute
the sha256 and refuse a blob that does not match.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from core.errors import NeuroHSIError
from remote.credentials import redact, remember_secret, resolve_storage_connection_string

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_CONTAINER = "neurohsi"
DATASETS = "datasets"
MODELS = "models"
MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
SHA256_KEY = "sha256"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HASH_CHUNK = 8 * MiB

Progress = Callable[[int, int], None]
"""progress(bytes_done, bytes_total), called from worker threads."""


class StorageError(NeuroHSIError, ValueError):
    """Blob storage cannot be used: one line, never the secret (text passes through redact)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(redact(message).split()))


class BlobNotFound(StorageError):
    """A dataset, model or blob is not in the container."""


class IntegrityError(StorageError):
    """A blob's content does not match its recorded sha256 (corrupted or tampered)."""


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


@dataclass
class TransferStats:
    """Counters of what actually went over the wire (tests check resumption with them)."""

    blocks_staged: int = 0
    blocks_reused: int = 0  # staged before (an interrupted upload), not sent again
    blocks_skipped: int = 0  # in files already committed with the same sha256
    bytes_sent: int = 0
    files_skipped: int = 0
    files_committed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)


@dataclass
class _FilePlan:
    path: Path
    blob_name: str
    size: int
    sha256: str
    md5: bytes | None
    block_ids: list[str]
    missing: list[int]  # block indices still to stage
    skip: bool  # already committed with the same sha256


class _ProgressCounter:
    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.callback is not None:
            self.callback(done, self.total)


def file_digests(path: Path, *, md5: bool = True) -> tuple[str, bytes | None]:
    """(sha256 hex, md5 bytes or None) of a file, read in 8 MiB chunks."""
    sha = hashlib.sha256()
    md = hashlib.md5(usedforsecurity=False) if md5 else None
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            sha.update(chunk)
            if md is not None:
                md.update(chunk)
    return sha.hexdigest(), None if md is None else md.digest()


def block_id(sha256_hex: str, block_size: int, index: int) -> str:
    """Block id for block ``index``: tied to the file content and the block size, same length for all."""
    # 48 bytes before base64: the service limit is 64 characters for the encoded id.
    raw = f"{sha256_hex[:32]}-{block_size:08x}-{index:06d}"
    return base64.b64encode(raw.encode("ascii")).decode("ascii")


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StorageError(f"invalid {what} name {name!r}: use letters, digits, '.', '_' or '-' (max 128)")
    return name


class BlobStorage:
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
        container: str = DEFAULT_CONTAINER,
        block_size: int = 4 * MiB,
        max_concurrency: int = 4,
        timeout_s: float = 20.0,
        retries: int = 2,
    ) -> None:
        if not isinstance(block_size, int) or not (1024 <= block_size <= 100 * MiB):
            raise StorageError(f"block_size must be 1 KiB..100 MiB, got {block_size!r}")
        if not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise StorageError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        if not isinstance(container, str) or not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", container):
            raise StorageError(f"invalid container name {container!r}: 3-63 lower-case letters, digits and '-'")
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

    @contextlib.contextmanager
    def _errors(self, doing: str):
        """Turn SDK errors into one clear, redacted StorageError line."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        where = f"{self.account_url}/{self.container_name}"
        try:
            yield
        except StorageError:
            raise
        except ClientAuthenticationError:
            raise StorageError(
                f"storage at {where} refused the credentials while {doing} (wrong account key, SAS or identity)"
            ) from None
        except ResourceNotFoundError as exc:
            code = _code(exc) or "not found"
            if code == "ContainerNotFound":
                raise StorageError(f"container {self.container_name!r} does not exist at {self.account_url}") from None
            raise StorageError(f"{where}: {code} while {doing}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise StorageError(f"storage at {self.account_url} is unreachable while {doing}: {_short(exc)}") from None
        except HttpResponseError as exc:
            code = _code(exc) or exc.status_code
            if exc.status_code == 403:
                raise StorageError(
                    f"storage at {where} refused the credentials while {doing} ({code})"
                ) from None
            raise StorageError(f"storage error while {doing} at {where}: HTTP {exc.status_code} {code}") from None

    # -- upload -------------------------------------------------------------------------

    def upload_file(
        self, path: str | Path, blob_name: str, *, progress: Progress | None = None, metadata: dict | None = None
    ) -> str:
        """Upload one file to ``blob_name`` (chunked, verified, resumable); return its sha256 hex."""
        plans = self._upload_many([(Path(path), blob_name)], progress=progress, metadata=metadata)
        return plans[0].sha256

    def upload_dataset(self, folder: str | Path, name: str | None = None, *, progress: Progress | None = None) -> str:
        """Upload a dataset folder (``<capture_id>/{raw,dark,white}.tif, labels.png, meta.json``).

        Returns the dataset name (default: the folder's name). Re-running after an
        interruption sends only what is missing. ``progress(bytes_done, bytes_total)``.
        """
        folder = Path(folder)
        name = check_name(name or folder.name, "dataset")
        files = dataset_files(folder)
        pairs = [(path, f"{DATASETS}/{name}/{rel}") for rel, path in files]
        plans = self._upload_many(pairs, progress=progress, metadata={"dataset": name})
        manifest = {
            "name": name,
            "uploaded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "capture_ids": sorted({rel.split("/")[0] for rel, _ in files}),
            "files": [
                {"path": rel, "size": plan.size, "sha256": plan.sha256} for (rel, _), plan in zip(files, plans)
            ],
        }
        self._put_json(f"{DATASETS}/{name}/{MANIFEST}", manifest)
        return name

    def upload_model(
        self,
        path: str | Path,
        name: str,
        version: str,
        *,
        metrics: dict | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Upload a model file to ``models/<name>/<version>/model.safetensors`` (+ metrics.json); return the blob name."""
        check_name(name, "model")
        check_name(str(version), "model version")
        blob = f"{MODELS}/{name}/{version}/{MODEL_FILE}"
        self._upload_many([(Path(path), blob)], progress=progress, metadata={"model": name, "version": str(version)})
        if metrics is not None:
            self._put_json(f"{MODELS}/{name}/{version}/{METRICS_FILE}", metrics)
        return blob

    def _put_json(self, blob_name: str, obj) -> None:
        from azure.storage.blob import ContentSettings

        data = json.dumps(obj, indent=2, sort_keys=True).encode("utf-8")
        sha = hashlib.sha256(data).hexdigest()
        with self._errors(f"writing {blob_name}"):
            self._container.upload_blob(
                blob_name,
                data,
                overwrite=True,
                metadata={SHA256_KEY: sha},
                content_settings=ContentSettings(
                    content_type="application/json", content_md5=bytearray(hashlib.md5(data).digest())
                ),
            )

    def _upload_many(
        self, pairs: list[tuple[Path, str]], *, progress: Progress | None, metadata: dict | None
    ) -> list[_FilePlan]:
        for path, _ in pairs:
            if not path.is_file():
                raise StorageError(f"{path}: not a file")
        self.check()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="blob-upload") as pool:
            # Hashing runs in the pool too: hashlib releases the GIL on large buffers.
            plans = list(pool.map(lambda pair: self._plan(*pair), pairs))
            total = sum(p.size for p in plans)
            counter = _ProgressCounter(total, progress)
            done_already = sum(
                p.size if p.skip else p.size - sum(self._block_len(p, i) for i in p.missing) for p in plans
            )
            if done_already:
                counter.add(done_already)
            jobs = [(plan, index) for plan in plans if not plan.skip for index in plan.missing]
            self._run_all(pool, [lambda p=p, i=i: self._stage(p, i, counter) for p, i in jobs])
            todo = [p for p in plans if not p.skip]
            self._run_all(pool, [lambda p=p: self._commit(p, metadata) for p in todo])
        if total == 0 and progress is not None:
            progress(0, 0)
        return plans

    @staticmethod
    def _run_all(pool: ThreadPoolExecutor, tasks: list[Callable[[], None]]) -> None:
        """Run tasks on the pool; on the first failure cancel what has not started and re-raise it."""
        futures = [pool.submit(task) for task in tasks]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            for f in pending:
                f.cancel()
            wait(pending)
            raise failed[0].exception()

    def _block_len(self, plan: _FilePlan, index: int) -> int:
        return min(self.block_size, plan.size - index * self.block_size)

    def _plan(self, path: Path, blob_name: str) -> _FilePlan:
        from azure.core.exceptions import ResourceNotFoundError

        size = path.stat().st_size
        # Whole-file Content-MD5 only where it is one block: for bigger files each block's
        # MD5 is checked by the service on arrival and sha256 identifies the whole, so a
        # second MD5 pass over every byte would only cost client CPU.
        sha, md5 = file_digests(path, md5=size <= self.block_size)
        n_blocks = max(1, -(-size // self.block_size))
        ids = [block_id(sha, self.block_size, i) for i in range(n_blocks)]
        blob = self._container.get_blob_client(blob_name)
        with self._errors(f"looking up {blob_name}"):
            try:
                props = blob.get_blob_properties()
                if props.size == size and (props.metadata or {}).get(SHA256_KEY) == sha:
                    self.stats.add(files_skipped=1, blocks_skipped=n_blocks)
                    return _FilePlan(path, blob_name, size, sha, md5, ids, [], True)
            except ResourceNotFoundError:
                pass
            try:
                staged = blob.get_block_list("uncommitted")[1]
            except ResourceNotFoundError:
                staged = []
        # Reuse a staged block only if id (content, block size, index) and length agree.
        have = {b.id: b.size for b in staged}
        missing = []
        for i, bid in enumerate(ids):
            expected = min(self.block_size, size - i * self.block_size)
            if have.get(bid) == expected:
                self.stats.add(blocks_reused=1)
            else:
                missing.append(i)
        return _FilePlan(path, blob_name, size, sha, md5, ids, missing, False)

    def _stage(self, plan: _FilePlan, index: int, counter: _ProgressCounter) -> None:
        length = self._block_len(plan, index)
        with open(plan.path, "rb") as fh:
            data = os.pread(fh.fileno(), length, index * self.block_size)
        if len(data) != length:
            raise StorageError(f"{plan.path}: file changed while uploading")
        blob = self._container.get_blob_client(plan.blob_name)
        with self._errors(f"uploading {plan.blob_name}"):
            # validate_content sends the block's MD5; the service rejects a block garbled in transit.
            blob.stage_block(plan.block_ids[index], data, length=length, validate_content=True)
        self.stats.add(blocks_staged=1, bytes_sent=length)
        counter.add(length)

    def _commit(self, plan: _FilePlan, metadata: dict | None) -> None:
        from azure.storage.blob import BlobBlock, ContentSettings

        blob = self._container.get_blob_client(plan.blob_name)
        meta = {**(metadata or {}), SHA256_KEY: plan.sha256}
        with self._errors(f"committing {plan.blob_name}"):
            blob.commit_block_list(
                [BlobBlock(block_id=b) for b in plan.block_ids],
                metadata=meta,
                content_settings=ContentSettings(
                    content_type="application/octet-stream",
                    content_md5=None if plan.md5 is None else bytearray(plan.md5),
                ),
            )
            # Verify: the committed blob has our size, our block list and our checksum.
            props = blob.get_blob_properties()
            committed = blob.get_block_list("committed")[0]
        ok = (
            props.size == plan.size
            and (props.metadata or {}).get(SHA256_KEY) == plan.sha256
            and [b.id for b in committed] == plan.block_ids
            and sum(b.size for b in committed) == plan.size
        )
        if not ok:
            raise IntegrityError(f"{plan.blob_name}: verification after upload failed (size or block list differ)")
        self.stats.add(files_committed=1)

    # -- listing ------------------------------------------------------------------------

    def list_datasets(self) -> list[RemoteDataset]:
        """Datasets in the container, by name."""
        groups: dict[str, dict] = {}
        with self._errors("listing datasets"):
            for blob in self._container.list_blobs(name_starts_with=f"{DATASETS}/"):
                parts = blob.name.split("/")
                if len(parts) < 3:
                    continue
                g = groups.setdefault(parts[1], {"captures": set(), "files": 0, "bytes": 0, "complete": False, "t": None})
                if len(parts) == 3 and parts[2] == MANIFEST:
                    g["complete"] = True
                elif len(parts) == 4:
                    g["captures"].add(parts[2])
                    g["files"] += 1
                    g["bytes"] += blob.size
                g["t"] = max(filter(None, (g["t"], blob.last_modified)), default=None)
        return [
            RemoteDataset(
                name=name,
                capture_ids=tuple(sorted(g["captures"])),
                n_files=g["files"],
                size_bytes=g["bytes"],
                complete=g["complete"],
                last_modified=_iso(g["t"]),
            )
            for name, g in sorted(groups.items())
        ]

    def list_models(self) -> list[RemoteModel]:
        """Models in the container, by name then version."""
        models: dict[tuple[str, str], dict] = {}
        with self._errors("listing models"):
            for blob in self._container.list_blobs(name_starts_with=f"{MODELS}/", include=["metadata"]):
                parts = blob.name.split("/")
                if len(parts) != 4:
                    continue
                m = models.setdefault((parts[1], parts[2]), {})
                if parts[3] == MODEL_FILE:
                    m["blob"] = blob
                elif parts[3] == METRICS_FILE:
                    m["metrics"] = True
        out = []
        for (name, version), m in sorted(models.items()):
            blob = m.get("blob")
            if blob is None:
                continue
            out.append(
                RemoteModel(
                    name=name,
                    version=version,
                    size_bytes=blob.size,
                    sha256=(blob.metadata or {}).get(SHA256_KEY),
                    last_modified=_iso(blob.last_modified),
                    has_metrics=bool(m.get("metrics")),
                )
            )
        return out

    def dataset_manifest(self, name: str) -> dict:
        """The manifest of an uploaded dataset (StorageError when it is missing or incomplete)."""
        check_name(name, "dataset")
        return json.loads(self._get_bytes(f"{DATASETS}/{name}/{MANIFEST}", what=f"dataset {name!r}"))

    def model_metrics(self, name: str, version: str) -> dict | None:
        """The metrics.json stored beside a model, or None when there is none."""
        try:
            return json.loads(self._get_bytes(f"{MODELS}/{name}/{version}/{METRICS_FILE}", what="metrics"))
        except BlobNotFound:
            return None

    # -- download -----------------------------------------------------------------------

    def download_file(
        self,
        blob_name: str,
        dest: str | Path,
        *,
        progress: Progress | None = None,
        expected_sha256: str | None = None,
    ) -> Path:
        """Download one blob to ``dest`` and check its sha256 against the blob's metadata (and
        ``expected_sha256`` when given); IntegrityError on mismatch, and no file is left."""
        from azure.core.exceptions import ResourceNotFoundError

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        blob = self._container.get_blob_client(blob_name)
        tmp = dest.with_name(dest.name + ".part")
        with self._errors(f"downloading {blob_name}"):
            try:
                props = blob.get_blob_properties()
            except ResourceNotFoundError:
                raise BlobNotFound(f"blob {blob_name!r} not found in container {self.container_name!r}") from None
            expected = (props.metadata or {}).get(SHA256_KEY)
            kwargs = {"max_concurrency": self.max_concurrency}
            if progress is not None:
                kwargs["progress_hook"] = lambda done, total: progress(done, total or props.size)
            with open(tmp, "wb") as fh:
                blob.download_blob(**kwargs).readinto(fh)
        actual, _ = file_digests(tmp, md5=False)
        if expected is None:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"blob {blob_name!r} has no recorded sha256: cannot verify it")
        if actual != expected:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(
                f"blob {blob_name!r} is corrupted: sha256 {actual[:12]}... does not match recorded {expected[:12]}..."
            )
        if expected_sha256 is not None and actual != expected_sha256:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"blob {blob_name!r} does not match the expected sha256 {expected_sha256[:12]}...")
        os.replace(tmp, dest)
        return dest

    def download_dataset(self, name: str, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Download dataset ``name`` into ``dest/<capture_id>/...``; every file's sha256 is checked."""
        manifest = self.dataset_manifest(name)
        dest = Path(dest)
        files = manifest.get("files", [])
        total = sum(int(f["size"]) for f in files)
        counter = _ProgressCounter(total, progress)

        def fetch(entry: dict) -> None:
            rel = entry["path"]
            if rel.startswith("/") or ".." in rel.split("/"):
                raise StorageError(f"dataset {name!r}: unsafe path {rel!r} in manifest")
            self.download_file(f"{DATASETS}/{name}/{rel}", dest / rel, expected_sha256=entry["sha256"])
            counter.add(int(entry["size"]))

        # Per-file parallelism; each file is small (a few MiB) so one request each is fine.
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="blob-download") as pool:
            self._run_all(pool, [lambda e=e: fetch(e) for e in files])
        return dest

    def download_model(self, name: str, version: str, dest: str | Path) -> Path:
        """Download ``models/<name>/<version>/model.safetensors`` to ``dest`` (a file path or a folder)."""
        check_name(name, "model")
        check_name(str(version), "model version")
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{name}-{version}.safetensors"
        return self.download_file(f"{MODELS}/{name}/{version}/{MODEL_FILE}", dest)

    def _get_bytes(self, blob_name: str, *, what: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"reading {blob_name}"):
            try:
                downloader = self._container.get_blob_client(blob_name).download_blob()
            except ResourceNotFoundError:
                raise BlobNotFound(f"{what} not found ({blob_name!r} missing in {self.container_name!r})") from None
            data = downloader.readall()
            expected = (downloader.properties.metadata or {}).get(SHA256_KEY)
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


def dataset_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path ``<capture_id>/<file>``, absolute path) of a dataset folder's files."""
    from core.errors import DatasetError

    if not folder.is_dir():
        raise DatasetError(folder, "not a dataset folder")
    try:
        from core.dataset import read_dataset
    except ImportError:  # pragma: no cover - core.dataset is part of the product
        read_dataset = None
    if read_dataset is not None:
        capture_dirs = [Path(c.folder) for c in read_dataset(folder)]
    else:
        capture_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "raw.tif").is_file())
    out = []
    for cdir in capture_dirs:
        for path in sorted(cdir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                out.append((f"{cdir.name}/{path.name}", path))
    if not out:
        raise DatasetError(folder, "no capture folders (<capture_id>/raw.tif ...) found")
    return out


def _code(exc) -> str | None:
    code = getattr(exc, "error_code", None)
    return None if code is None else str(getattr(code, "value", code))


def _iso(t) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat(timespec="seconds")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]
