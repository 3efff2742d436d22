"""``neurohsi cloud ...``: datasets and models in Blob storage, and training jobs (local or Azure ML).

Progress goes to stderr, results to stdout as JSON. Settings have the names of
:mod:`remote.cloud_config`, shared with the app's Settings ▸ Cloud: env ``NEUROHSI_*``
(``NEUROHSI_STORAGE_AUTH``, ``NEUROHSI_STORAGE_ACCOUNT_URL``, ``NEUROHSI_CONTAINER``,
``NEUROHSI_AZUREML_*``) or flags. Secrets come from the keyring
(``neurohsi cloud secret set storage-connection-string|storage-account-key|storage-sas-token``)
or env ``NEUROHSI_STORAGE_CONNECTION_STRING``; they are never command-line arguments,
which other users could read from the process list. ``neurohsi cloud check`` says in one
line each whether storage and Azure ML work.
Local jobs live in ``$NEUROHSI_HOME/jobs`` (default ``~/.local/share/neurohsi/jobs``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import defaults

AZUREML_FLAGS = ("subscription_id", "resource_group", "workspace", "compute", "environment")  # remote.cloud_config


def register(subparsers: argparse._SubParsersAction) -> None:
    cloud = subparsers.add_parser(
        "cloud",
        help="upload datasets, train in the cloud or locally, fetch models",
        description="Blob storage and training jobs. Storage: env NEUROHSI_STORAGE_CONNECTION_STRING or the "
        "keyring. JSON on stdout, progress on stderr.",
    )
    sub = cloud.add_subparsers(dest="cloud_command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--container", default=None,
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
    p.add_argument("--model-kind", choices=("conv2dnet", "spectral"), default="conv2dnet",
                   help="conv2dnet (the thesis's patches) or spectral (per pixel; with --balance loss, the "
                        "recommended model for real tissue)")
    p.add_argument("--balance", choices=("none", "sampling", "loss"), default="none",
                   help="class balance: none (thesis), sampling (balanced batches), loss (weighted; spectral only)")
    p.add_argument("--no-cv", action="store_true", help="one model, no double cross-validation")
    p.add_argument("--model-name", default=defaults.MODEL_NAME)
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
            p.add_argument("--follow", action="store_true",
                           help="print the log as the job writes it, until it ends (Azure ML: jobs.stream)")
        if name == "fetch":
            p.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.safetensors")
        _azureml_options(p)
        common(p)
        p.set_defaults(handler=handler)

    p = sub.add_parser("register", help="register a finished Azure ML job's model in the workspace model registry")
    p.add_argument("job", help="Azure ML job name")
    _azureml_options(p)
    common(p)
    p.set_defaults(handler=cmd_register, backend="azureml")

    p = sub.add_parser("registry", help="list the registered versions of a model (Azure ML model registry, "
                                        "or with --backend local the models local jobs uploaded)")
    p.add_argument("name", help="model name, e.g. conv2dnet-ward7-20261129")
    p.add_argument("--fetch", metavar="VERSION", help="download this version (with -o)")
    p.add_argument("-o", "--output", type=Path, metavar="MODEL.safetensors")
    p.add_argument("--backend", choices=("azureml", "local"), default="azureml")
    _azureml_options(p)
    common(p)
    p.set_defaults(handler=cmd_registry)

    p = sub.add_parser("check", help="say in one line each whether storage and Azure ML work")
    _azureml_options(p)
    common(p)
    p.set_defaults(handler=cmd_check)

    from app.cli.deploy_commands import add_deploy

    add_deploy(sub, _azureml_options)

    p = sub.add_parser("secret", help="store or remove a secret in the OS keyring (value read from stdin)")
    p.add_argument("action", choices=("set", "delete"))
    p.add_argument("name", help="e.g. storage-connection-string, scoring-endpoint-key, azureml-client-secret")
    p.set_defaults(handler=cmd_secret)


def _azureml_options(p: argparse.ArgumentParser) -> None:
    from remote.cloud_config import ENV_VARS

    g = p.add_argument_group("Azure ML (with --backend azureml; defaults from NEUROHSI_AZUREML_* env vars)")
    for key in (*AZUREML_FLAGS, "tenant_id", "client_id"):
        g.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None, help=f"default: env {ENV_VARS[key]}")


# -- helpers ----------------------------------------------------------------------------


def jobs_dir() -> Path:
    """Local job state: $NEUROHSI_HOME/jobs, else ~/.local/share/neurohsi/jobs (the app's folder too)."""
    from app.retraining.state import default_jobs_dir

    return default_jobs_dir()


def _config(args: argparse.Namespace):
    """The cloud settings: env NEUROHSI_* (remote.cloud_config), then the flags given here."""
    from dataclasses import replace

    from remote.cloud_config import resolve

    given = {k: getattr(args, k) for k in (*AZUREML_FLAGS, "tenant_id", "client_id", "container")
             if getattr(args, k, None)}
    return replace(resolve(), **given)


def _storage(args: argparse.Namespace):
    from remote.cloud_config import make_storage

    return make_storage(_config(args))


def _backend(args: argparse.Namespace):
    if args.backend == "local":
        from remote.training_backends.local import LocalBackend

        return LocalBackend(_storage(args), jobs_dir())
    from remote.cloud_config import ENV_VARS, azureml_missing, make_azureml_backend

    config = _config(args)
    missing = azureml_missing(config)
    if missing:
        flags = {ENV_VARS[k]: k for k in AZUREML_FLAGS}
        raise ValueError("Azure ML backend needs " + ", ".join(
            f"--{flags[var].replace('_', '-')} (or {var})" for var in missing))
    return make_azureml_backend(config)


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
        epochs = sum(1 for e in read_job_metrics(backend, job_id) if e.get("event") == "epoch")
        line = f"{info.status.value} ({epochs} epochs)"
        if line != last:
            print(f"[{time.monotonic() - start:6.1f} s] {job_id}: {line}", file=sys.stderr)
            last = line
        if info.status.terminal:
            return info
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"job {job_id} still {info.status.value} after {timeout:.0f} s")
        time.sleep(1.0)


def read_job_metrics(backend, job_id: str) -> list[dict]:
    from remote.tracking import read_job_metrics as read

    return read(backend, job_id)


def _tracked(backend, job_id: str) -> bool:
    """An Azure ML job is read live only through the workspace's MLflow (azureml-mlflow installed)."""
    from remote.tracking import azureml_plugin_available

    return backend.name != "local" and azureml_plugin_available()


def _job_json(backend, job_id: str, info=None) -> dict:
    info = info or backend.info(job_id)
    out = info.to_dict()
    events = read_job_metrics(backend, job_id) if backend.name == "local" or _tracked(backend, job_id) else []
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
    from core.dataset.check import check_dataset_files

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
    backend = _backend(args)
    if args.follow:
        status = backend.follow_logs(args.job, lambda text: (sys.stdout.write(text), sys.stdout.flush()))
        return 0 if status.value == "Completed" else 1
    sys.stdout.write(backend.logs(args.job, tail=args.tail))
    if backend.name == "local" or _tracked(backend, args.job):  # metrics of a running job, same reader as status
        epochs = [e for e in read_job_metrics(backend, args.job) if e.get("event") == "epoch"]
        if epochs:
            last = epochs[-1]
            fold = "" if last.get("fold") is None else f"fold model {last['fold']}, "
            val = "" if last.get("val_oacc") is None else f", validation OACC {last['val_oacc']:.3f}"
            print(f"metrics: {len(epochs)} epochs logged; last {fold}epoch {last['epoch']}: "
                  f"loss {last['loss']:.4f}{val}", file=sys.stderr)
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


def cmd_register(args: argparse.Namespace) -> int:
    import tempfile

    from core.model.files import load_model

    backend = _backend(args)
    with tempfile.TemporaryDirectory() as tmp:  # the tags come from the model file itself
        info = load_model(backend.fetch_model(args.job, Path(tmp))).info
    _emit(backend.register_model(args.job, info))
    return 0


def cmd_registry(args: argparse.Namespace) -> int:
    backend = _backend(args)
    if args.fetch:
        if args.output is None or args.output.suffix != ".safetensors":
            raise ValueError("--fetch needs -o MODEL.safetensors")
        path = backend.fetch_registered(args.name, args.fetch, args.output)
        _emit({"name": args.name, "version": args.fetch, "model": str(path)})
        return 0
    _emit(backend.registered_versions(args.name))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from remote.cloud_config import check_azureml, check_storage

    config = _config(args)
    storage_ok, storage_line = check_storage(config)
    azureml_ok, azureml_line = check_azureml(config)
    print(storage_line, file=sys.stderr)
    print(azureml_line, file=sys.stderr)
    _emit({"storage": {"ok": storage_ok, "message": storage_line},
           "azureml": {"ok": azureml_ok, "message": azureml_line}})
    return 0 if storage_ok else 1


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
