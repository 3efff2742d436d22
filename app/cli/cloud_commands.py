"""``neurohsi cloud ...``: datasets and models in Blob storage, and training jobs (local or Azure ML).

Progress goes to stderr, results to stdout as JSON. Storage comes from env
``NEUROHSI_STORAGE_CONNECTION_STRING`` or the keyring entry ``storage-connection-string``
(``neurohsi cloud secret set storage-connection-string`` stores it; secrets are never
command-line arguments, which other users could read from the process list).
Local jobs live in ``$NEUROHSI_HOME/jobs`` (default ``~/.local/share/neurohsi/jobs``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from core import defaults

AZUREML_ENV = {
    "subscription_id": "NEUROHSI_AZUREML_SUBSCRIPTION_ID",
    "resource_group": "NEUROHSI_AZUREML_RESOURCE_GROUP",
    "workspace": "NEUROHSI_AZUREML_WORKSPACE",
    "compute": "NEUROHSI_AZUREML_COMPUTE",
    "environment": "NEUROHSI_AZUREML_ENVIRONMENT",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    cloud = subparsers.add_parser(
        "cloud",
        help="upload datasets, train in the cloud or locally, fetch models",
        description="Blob storage and training jobs. Storage: env NEUROHSI_STORAGE_CONNECTION_STRING or the "
        "keyring. JSON on stdout, progress on stderr.",
    )
    sub = cloud.add_subparsers(dest="cloud_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--container", default=os.environ.get("NEUROHSI_CONTAINER", "neurohsi"),
                       help="blob container (default: env NEUROHSI_CONTAINER or 'neurohsi')")

    p = sub.add_parser("upload", help="upload a dataset folder (resumable)")
    p.add_argument("dataset", type=Path, help="dataset folder (DATASET/<capture_id>/...)")
    p.add_argument("--name", help="dataset name in storage (default: the folder name)")
    common(p)
    p.set_defaults(handler=cmd_upload)

    p = sub.add_parser("datasets", help="list uploaded datasets")
    common(p)
    p.set_defaults(handler=cmd_datasets)

    p = sub.add_parser("models", help="list models in storage")
    common(p)
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("train", help="submit a training job on an uploaded dataset")
    p.add_argument("--backend", choices=("local", "azureml"), default="local")
    p.add_argument("--dataset", required=True, help="uploaded dataset name")
    p.add_argument("--train-capture", action="append", default=[], metavar="ID", help="train only on these")
    p.add_argument("--test-capture", action="append", default=[], metavar="ID", help="hold out and evaluate")
    p.add_argument("--epochs", type=int, default=defaults.EPOCHS)
    p.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE)
    p.add_argument("--patch-size", type=int, default=defaults.PATCH_SIZE)
    p.add_argument("--folds", type=int, default=defaults.FOLDS)
    p.add_argument("--lr", type=float, default=defaults.LEARNING_RATE)
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--no-cv", action="store_true", help="one model, no double cross-validation")
    p.add_argument("--model-name", default="conv2dnet")
    p.add_argument("--model-version", dest="version", default="1", help="version stored in the model file")
    p.add_argument("--wait", action="store_true", help="wait until the job ends (progress on stderr)")
    _azureml_options(p)
    common(p)
    p.set_defaults(handler=cmd_train)

    for name, handler, text in (
        ("status", cmd_status, "a job's status and metrics"),
        ("logs", cmd_logs, "the tail of a job's log"),
        ("cancel", cmd_cancel, "cancel a job"),
        ("fetch", cmd_fetch, "download a finished job's model"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("job", help="job id")
        p.add_argument("--backend", choices=("local", "azureml"), default="local")
        if name == "status":
            p.add_argument("--wait", action="store_true", help="wait until the job ends")
            p.add_argument("--timeout", type=float, default=None, help="with --wait: give up after N seconds")
        if name == "logs":
            p.add_argument("--tail", type=int, default=100, help="last N lines (default 100)")
        if name == "fetch":
            p.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.safetensors")
        _azureml_options(p)
        common(p)
        p.set_defaults(handler=handler)

    p = sub.add_parser("secret", help="store or remove a secret in the OS keyring (value read from stdin)")
    p.add_argument("action", choices=("set", "delete"))
    p.add_argument("name", help="e.g. storage-connection-string, scoring-endpoint-key, azureml-client-secret")
    p.set_defaults(handler=cmd_secret)


def _azureml_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Azure ML (with --backend azureml; defaults from NEUROHSI_AZUREML_* env vars)")
    for key, env in AZUREML_ENV.items():
        g.add_argument(f"--{key.replace('_', '-')}", dest=key, default=os.environ.get(env))
    g.add_argument("--tenant-id", default=os.environ.get("NEUROHSI_AZUREML_TENANT_ID"))
    g.add_argument("--client-id", default=os.environ.get("NEUROHSI_AZUREML_CLIENT_ID"))


# -- helpers ----------------------------------------------------------------------------


def jobs_dir() -> Path:
    """Local job state: $NEUROHSI_HOME/jobs, else ~/.local/share/neurohsi/jobs."""
    home = os.environ.get("NEUROHSI_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "neurohsi"
    return base / "jobs"


def _storage(args: argparse.Namespace):
    from remote.blob_storage import BlobStorage

    return BlobStorage(container=args.container)


def _backend(args: argparse.Namespace):
    if args.backend == "local":
        from remote.training_backends.local import LocalBackend

        return LocalBackend(_storage(args), jobs_dir())
    from remote.training_backends.azureml import AzureMLBackend

    missing = [f"--{k.replace('_', '-')} (or {env})" for k, env in AZUREML_ENV.items() if not getattr(args, k)]
    if missing:
        raise ValueError(f"Azure ML backend needs {', '.join(missing)}")
    return AzureMLBackend(
        args.subscription_id, args.resource_group, args.workspace, args.compute, args.environment,
        tenant_id=args.tenant_id, client_id=args.client_id,
    )


def _emit(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


class _ByteBar:
    """tqdm bar in bytes on stderr, fed by progress(done, total) from worker threads."""

    def __init__(self, label: str) -> None:
        import threading

        self.label, self.bar, self.lock = label, None, threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        with self.lock:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.label, unit="B", unit_scale=True, file=sys.stderr,
                                mininterval=0.5)
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _wait(backend, job_id: str, timeout: float | None = None):
    """Poll until the job is terminal, printing status and epochs to stderr; return its info."""
    start = time.monotonic()
    last = None
    while True:
        info = backend.info(job_id)
        epochs = sum(1 for e in backend.metrics(job_id) if e.get("event") == "epoch")
        line = f"{info.status.value} ({epochs} epochs)"
        if line != last:
            print(f"[{time.monotonic() - start:6.1f} s] {job_id}: {line}", file=sys.stderr)
            last = line
        if info.status.terminal:
            return info
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"job {job_id} still {info.status.value} after {timeout:.0f} s")
        time.sleep(1.0)


def _job_json(backend, job_id: str, info=None) -> dict:
    info = info or backend.info(job_id)
    out = info.to_dict()
    events = backend.metrics(job_id) if backend.name == "local" else []
    epochs = [e for e in events if e.get("event") == "epoch"]
    done = [e for e in events if e.get("event") == "done"]
    out["progress"] = {
        "epochs_done": len(epochs),
        "last_epoch": epochs[-1] if epochs else None,
    }
    out["metrics"] = done[-1].get("metrics") if done else None
    return out


# -- handlers ---------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    from core.dataset_check import check_dataset_files

    # every TIFF and label PNG decoded and label ids checked first: a truncated file is refused here,
    # not found by the training job after a long upload
    checked = check_dataset_files(
        args.dataset, progress=lambda done, total, cid: print(f"checked {cid} ({done}/{total})", file=sys.stderr))
    storage = _storage(args)
    bar = _ByteBar("upload")
    start = time.perf_counter()
    try:
        name = storage.upload_dataset(args.dataset, args.name, progress=bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    manifest = storage.dataset_manifest(name)
    size = sum(f["size"] for f in manifest["files"])
    sent = storage.stats.bytes_sent
    _emit({
        "dataset": name,
        "container": storage.container_name,
        "captures": manifest["capture_ids"],
        "captures_checked": len(checked),
        "files": len(manifest["files"]),
        "bytes": size,
        "bytes_sent": sent,
        "blocks_sent": storage.stats.blocks_staged,
        "blocks_reused": storage.stats.blocks_reused,
        "files_already_there": storage.stats.files_skipped,
        "seconds": round(seconds, 3),
        "mb_per_s": round(sent / 1e6 / seconds, 1) if seconds > 0 else None,
    })
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    _emit([asdict(d) for d in _storage(args).list_datasets()])
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    _emit([asdict(m) for m in _storage(args).list_models()])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from remote.training_job import spec_from_args

    args.cross_validation = "none" if args.no_cv else "double"
    spec = spec_from_args(args, args.dataset)
    backend = _backend(args)
    job_id = backend.submit(spec)
    print(f"submitted {args.backend} job {job_id}", file=sys.stderr)
    info = _wait(backend, job_id) if args.wait else None
    _emit(_job_json(backend, job_id, info))
    return 0 if info is None or info.status.value == "Completed" else 1


def cmd_status(args: argparse.Namespace) -> int:
    backend = _backend(args)
    info = _wait(backend, args.job, args.timeout) if args.wait else None
    _emit(_job_json(backend, args.job, info))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    sys.stdout.write(_backend(args).logs(args.job, tail=args.tail))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    backend = _backend(args)
    status = backend.cancel(args.job)
    _emit({"job_id": args.job, "status": status.value})
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    import hashlib

    if args.output.suffix != ".safetensors":
        raise ValueError(f"{args.output}: model file must end in .safetensors")
    path = _backend(args).fetch_model(args.job, args.output)
    _emit({"job_id": args.job, "model": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    return 0


def cmd_secret(args: argparse.Namespace) -> int:
    from remote.credentials import delete_secret, set_secret

    if args.action == "delete":
        _emit({"name": args.name, "deleted": delete_secret(args.name)})
        return 0
    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{args.name}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    set_secret(args.name, value)
    _emit({"name": args.name, "stored": True})
    return 0
