"""Uploads: fixed-size blocks staged in parallel with their MD5, committed, then verified; resumable.

Block ids derive from the file's sha256, the block size and the block index, so an
interrupted upload resumes from the blocks the service already holds
(``get_block_list``), and a file already committed with the same sha256 is not sent
again. Every committed blob carries its sha256 in metadata; single-block files also
get the blob's Content-MD5.

The sha256 recorded is that of the bytes sent: each staged block's digest is kept,
and before committing the file is read again; a block that differs from what was
sent, or a whole file whose sha256 is no longer the planned one, refuses the commit
(:class:`FileChangedError`), so a file edited during the upload is never stored
under a sha256 it does not have (and never skipped later as "already uploaded").
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.clock import utc_now_iso
from remote.blob_storage.errors import FileChangedError, IntegrityError, StorageError
from remote.blob_storage.layout import DATASETS, MANIFEST, METRICS_FILE, SHA256_KEY, check_name, dataset_files, model_blob
from remote.blob_storage.transfer import Progress, ProgressCounter, block_id, file_digests, run_all


@dataclass
class FilePlan:
    """What an upload of one file still has to do."""

    path: Path
    blob_name: str
    size: int
    sha256: str
    md5: bytes | None
    block_ids: list[str]
    missing: list[int]  # block indices still to stage
    skip: bool  # already committed with the same sha256
    sent: dict[int, str] = field(default_factory=dict)  # block index -> sha256 of the bytes staged now


class Uploads:
    """The upload half of :class:`remote.blob_storage.BlobStorage` (uses its container, errors and stats)."""

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
        The manifest is written last: its presence marks a complete upload.
        """
        folder = Path(folder)
        name = check_name(name or folder.name, "dataset")
        files = dataset_files(folder)
        pairs = [(path, f"{DATASETS}/{name}/{rel}") for rel, path in files]
        plans = self._upload_many(pairs, progress=progress, metadata={"dataset": name})
        manifest = {
            "name": name,
            "uploaded": utc_now_iso(),
            "capture_ids": sorted({rel.split("/")[0] for rel, _ in files}),
            "files": [
                {"path": rel, "size": plan.size, "sha256": plan.sha256} for (rel, _), plan in zip(files, plans)
            ],
        }
        self._put_json(f"{DATASETS}/{name}/{MANIFEST}", manifest)
        from core.audit.events import record

        record("dataset_uploaded", dataset=name, captures=len(manifest["capture_ids"]), files=len(files),
               folder=str(folder))
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
        blob = model_blob(name, version)
        self._upload_many([(Path(path), blob)], progress=progress, metadata={"model": name, "version": str(version)})
        if metrics is not None:
            self._put_json(model_blob(name, version, METRICS_FILE), metrics)
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
    ) -> list[FilePlan]:
        for path, _ in pairs:
            if not path.is_file():
                raise StorageError(f"{path}: not a file")
        self.check()
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="blob-upload") as pool:
            # Hashing runs in the pool too: hashlib releases the GIL on large buffers.
            plans = list(pool.map(lambda pair: self._plan(*pair), pairs))
            total = sum(p.size for p in plans)
            counter = ProgressCounter(total, progress)
            done_already = sum(
                p.size if p.skip else p.size - sum(self._block_len(p, i) for i in p.missing) for p in plans
            )
            if done_already:
                counter.add(done_already)
            jobs = [(plan, index) for plan in plans if not plan.skip for index in plan.missing]
            run_all(pool, [lambda p=p, i=i: self._stage(p, i, counter) for p, i in jobs])
            todo = [p for p in plans if not p.skip]
            run_all(pool, [lambda p=p: self._commit(p, metadata) for p in todo])
        if total == 0 and progress is not None:
            progress(0, 0)
        return plans

    def _block_len(self, plan: FilePlan, index: int) -> int:
        return min(self.block_size, plan.size - index * self.block_size)

    def _plan(self, path: Path, blob_name: str) -> FilePlan:
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
                    return FilePlan(path, blob_name, size, sha, md5, ids, [], True)
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
        return FilePlan(path, blob_name, size, sha, md5, ids, missing, False)

    def _stage(self, plan: FilePlan, index: int, counter: ProgressCounter) -> None:
        length = self._block_len(plan, index)
        with open(plan.path, "rb") as fh:
            data = os.pread(fh.fileno(), length, index * self.block_size)
        if len(data) != length:
            raise FileChangedError(f"{plan.path}: changed while uploading (shorter than planned); nothing committed")
        blob = self._container.get_blob_client(plan.blob_name)
        with self._errors(f"uploading {plan.blob_name}"):
            # validate_content sends the block's MD5; the service rejects a block garbled in transit.
            blob.stage_block(plan.block_ids[index], data, length=length, validate_content=True)
        plan.sent[index] = hashlib.sha256(data).hexdigest()  # one key per thread: no lock needed
        self.stats.add(blocks_staged=1, bytes_sent=length)
        counter.add(length)

    def _check_unchanged(self, plan: FilePlan) -> None:
        """Read the file again: every block sent now as it was sent, the whole with the planned sha256."""
        whole = hashlib.sha256()
        with open(plan.path, "rb") as fh:
            for index in range(len(plan.block_ids)):
                data = fh.read(self._block_len(plan, index))
                whole.update(data)
                if index in plan.sent and hashlib.sha256(data).hexdigest() != plan.sent[index]:
                    raise FileChangedError(f"{plan.path}: changed while uploading (block {index} differs from what "
                                           "was sent); nothing committed: upload it again")
            grew = fh.read(1)
        if grew or whole.hexdigest() != plan.sha256:
            raise FileChangedError(f"{plan.path}: changed while uploading (sha256 is no longer the one planned); "
                                   "nothing committed: upload it again")

    def _commit(self, plan: FilePlan, metadata: dict | None) -> None:
        from azure.storage.blob import BlobBlock, ContentSettings

        self._check_unchanged(plan)
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
