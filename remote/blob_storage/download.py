"""Downloads: every file's sha256 recomputed and checked before it replaces anything on disk."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.fileio import atomic_write
from remote.blob_storage.errors import BlobNotFound, IntegrityError, StorageError
from remote.blob_storage.layout import DATASETS, SHA256_KEY, model_blob
from remote.blob_storage.transfer import Progress, ProgressCounter, run_all, stream_digests


class Downloads:
    """The download half of :class:`remote.blob_storage.BlobStorage` (uses its container and errors)."""

    def download_file(
        self,
        blob_name: str,
        dest: str | Path,
        *,
        progress: Progress | None = None,
        expected_sha256: str | None = None,
    ) -> Path:
        """Download one blob to ``dest`` and check its sha256 against the blob's metadata (and
        ``expected_sha256`` when given). On :class:`IntegrityError` (or any failure) ``dest`` is left as
        it was: the download goes to a temporary file that replaces ``dest`` only once verified."""
        from azure.core.exceptions import ResourceNotFoundError

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        blob = self._container.get_blob_client(blob_name)

        with self._errors(f"downloading {blob_name}"):
            try:
                props = blob.get_blob_properties()
            except ResourceNotFoundError:
                raise BlobNotFound(f"blob {blob_name!r} not found in container {self.container_name!r}") from None
            recorded = (props.metadata or {}).get(SHA256_KEY)
            if recorded is None:
                raise IntegrityError(f"blob {blob_name!r} has no recorded sha256: cannot verify it")
            kwargs = {"max_concurrency": self.max_concurrency}
            if progress is not None:
                kwargs["progress_hook"] = lambda done, total: progress(done, total or props.size)

            def fetch_and_verify(fh) -> None:
                blob.download_blob(**kwargs).readinto(fh)  # parallel ranges: written out of order
                fh.flush()
                fh.seek(0)
                actual, _ = stream_digests(fh, md5=False)
                if actual != recorded:
                    raise IntegrityError(
                        f"blob {blob_name!r} is corrupted: sha256 {actual[:12]}... does not match "
                        f"recorded {recorded[:12]}..."
                    )
                if expected_sha256 is not None and actual != expected_sha256:
                    raise IntegrityError(
                        f"blob {blob_name!r} does not match the expected sha256 {expected_sha256[:12]}..."
                    )

            atomic_write(dest, fetch_and_verify)
        return dest

    def download_dataset(self, name: str, dest: str | Path, *, progress: Progress | None = None) -> Path:
        """Download dataset ``name`` into ``dest/<capture_id>/...``; every file's sha256 is checked."""
        manifest = self.dataset_manifest(name)
        dest = Path(dest)
        files = manifest.get("files", [])
        total = sum(int(f["size"]) for f in files)
        counter = ProgressCounter(total, progress)

        def fetch(entry: dict) -> None:
            rel = entry["path"]
            if rel.startswith("/") or ".." in rel.split("/"):
                raise StorageError(f"dataset {name!r}: unsafe path {rel!r} in manifest")
            self.download_file(f"{DATASETS}/{name}/{rel}", dest / rel, expected_sha256=entry["sha256"])
            counter.add(int(entry["size"]))

        # Per-file parallelism; each file is small (a few MiB) so one request each is fine.
        with ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="blob-download") as pool:
            run_all(pool, [lambda e=e: fetch(e) for e in files])
        return dest

    def download_model(self, name: str, version: str, dest: str | Path) -> Path:
        """Download ``models/<name>/<version>/model.safetensors`` to ``dest`` (a file path or a folder)."""
        blob = model_blob(name, version)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / f"{name}-{version}.safetensors"
        return self.download_file(blob, dest)
