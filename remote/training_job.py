"""The training job script: what the local backend runs in a subprocess and what an Azure ML
command job runs on the compute cluster.

    python -m remote.training_job (--dataset NAME | --dataset-dir DIR) --output-dir DIR
                                  (--spec spec.json | hyper-parameter flags) [options]

* ``--dataset NAME`` downloads ``datasets/NAME/`` from Blob storage (connection string from
  env ``NEUROHSI_STORAGE_CONNECTION_STRING`` or the keyring); ``--dataset-dir`` reads a local
  folder instead (Azure ML mounts the ``uri_folder`` input there).
* ``--spec`` reads the settings from the ``spec.json`` the local backend writes
  (:meth:`remote.training_backends.base.JobSpec.read`); an Azure ML job passes them as flags
  instead (typed job inputs, editable in the studio), which become the same ``JobSpec``.
* Training is :func:`core.training.run.train_model_file`, in this process: the function
  ``neurohsi train`` calls too. Progress goes to ``progress.jsonl`` as it trains, and to
  MLflow when the backend names a run (``MLFLOW_TRACKING_URI`` / ``MLFLOW_RUN_ID``).
* Before training the dataset is checked against its ``manifest.json`` (size and sha256
  of every file, see :func:`core.dataset.check.verify_manifest`); a mismatch fails the
  job with one line naming the file. ``--skip-manifest-check`` is for a local folder
  that was never uploaded.
* ``--state-file`` records Preparing -> Running -> Finalizing -> Completed/Failed/Canceled.
* ``--upload-model`` stores the model and its metrics at ``models/<model-name>/<model-version>/``.

Outputs in ``--output-dir``: ``model.safetensors``, ``metrics.json``, ``progress.jsonl``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from core import defaults
from core.clock import utc_now_stamp
from core.errors import TrainingCancelled
from core.training.config import BALANCE_MODES, MODEL_KINDS, TrainingConfig
from core.training.run import read_progress
from remote.training_backends.base import JobSpec, JobStatus
from remote.training_backends.job_state import read_state, update_state

log = logging.getLogger("neurohsi.training_job")

PROGRESS_FILE = "progress.jsonl"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


class _Terminated(Exception):
    """SIGTERM arrived (cancel from the backend, or the machine shutting down)."""


# SIGTERM sets this; training polls it before every batch (a signal handler cannot raise
# into double-cv's worker threads), and outside training the handler raises _Terminated.
_STOP = threading.Event()
_TRAINING = threading.Event()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m remote.training_job", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="dataset name in Blob storage (datasets/<name>/)")
    src.add_argument("--dataset-dir", type=Path, help="local dataset folder (e.g. the Azure ML uri_folder mount)")
    p.add_argument("--container", default="neurohsi", help="Blob container (with --dataset / --upload-model)")
    p.add_argument("--output-dir", type=Path, required=True, help="where the model, metrics and progress go")
    p.add_argument("--skip-manifest-check", action="store_true",
                   help="train on a --dataset-dir without manifest.json (a folder that was never uploaded)")
    p.add_argument("--state-file", type=Path, help="job state file to record status transitions in")
    p.add_argument("--upload-model", action="store_true", help="upload the model to models/<name>/<version>/")
    p.add_argument("--model-version", default=None, help="version to upload the model as (default: a timestamp)")
    p.add_argument("--spec", type=Path, default=None,
                   help="the job's spec.json (written by the backend); replaces the flags below")
    p.add_argument("--epochs", type=int, default=defaults.EPOCHS)
    p.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE)
    p.add_argument("--patch-size", type=int, default=defaults.PATCH_SIZE)
    p.add_argument("--folds", type=int, default=defaults.FOLDS)
    p.add_argument("--lr", type=float, default=defaults.LEARNING_RATE)
    p.add_argument("--cross-validation", choices=("none", "double"), default="double")
    p.add_argument("--seed", type=int, default=defaults.SEED)
    p.add_argument("--model-kind", choices=MODEL_KINDS, default="conv2dnet",
                   help="conv2dnet (the thesis's 7x7 patches) or spectral (per pixel)")
    p.add_argument("--balance", choices=BALANCE_MODES, default="none",
                   help="class balance: none (thesis), sampling (balanced batches), loss (weighted; spectral only)")
    p.add_argument("--model-name", default=defaults.MODEL_NAME)
    p.add_argument("--version", default="1", help="version stored in the model file (ModelInfo.version)")
    p.add_argument("--train-capture", action="append", default=[], help="train only on these captures")
    p.add_argument("--fold", type=int, default=None,
                   help="train only double-cv fold model FOLD (one trial of the Azure ML sweep); "
                        "writes fold-FOLD.safetensors and fold-FOLD.json to --output-dir")
    p.add_argument("--cv-run", default=None,
                   help="with --fold: the double-cv run (pipeline) this trial belongs to; its MLflow run is tagged "
                        "with it and holds the trial's outputs, which the selection step reads")
    p.add_argument("--test-capture", action="append", default=[], help="hold these captures out of training")
    return p


def spec_from_args(args: argparse.Namespace, dataset_name: str) -> JobSpec:
    """The job's settings: ``--spec`` when given, else the flags (JobError / ValueError on bad values)."""
    if getattr(args, "spec", None) is not None:
        return JobSpec.read(args.spec)
    training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, patch_size=args.patch_size,
                              folds=args.folds, lr=args.lr, cross_validation=args.cross_validation, seed=args.seed,
                              model_kind=args.model_kind, balance=args.balance)
    return JobSpec(dataset=dataset_name, train_capture_ids=tuple(args.train_capture),
                   test_capture_ids=tuple(args.test_capture), training=training, model_name=args.model_name,
                   model_version=args.version)


def select_captures(dataset_dir: Path, spec: JobSpec, work_dir: Path) -> Path:
    """The dataset folder to hand ``neurohsi train``: ``dataset_dir`` itself, or (when the spec
    names training captures) a folder of symlinks to those plus the held-out captures.

    Raises DatasetError when a named capture is not in the dataset.
    """
    from core.errors import DatasetError

    available = sorted(p.name for p in dataset_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = set(spec.train_capture_ids) | set(spec.test_capture_ids)
    missing = sorted(wanted - set(available))
    if missing:
        raise DatasetError(dataset_dir, f"no capture(s) {', '.join(missing)} (has {', '.join(available)})")
    if not spec.train_capture_ids:
        return dataset_dir  # train on everything not held out; neurohsi train does the hold-out
    subset = work_dir / "selected-captures"
    subset.mkdir(parents=True, exist_ok=True)
    for cid in sorted(wanted):
        link = subset / cid
        if not link.exists():
            link.symlink_to((dataset_dir / cid).resolve(), target_is_directory=True)
    return subset


def train(train_dir: Path, out: Path, spec: JobSpec, dataset_sha256: str | None, fold: int | None,
          cv_run: str | None = None) -> dict:
    """Train ``spec`` on ``train_dir`` in this process (:mod:`core.training.run`), progress to
    ``out/progress.jsonl`` and MLflow; returns the summary. TrainingCancelled after SIGTERM."""
    from core.training.run import ProgressLog, train_model_file
    from remote.tracking import TrainingRun

    config = spec.training
    model_path = out / MODEL_FILE
    tracking = TrainingRun(None, config, dataset_name=train_dir.name, run_name=model_path.stem,
                           model_name=spec.model_name, fold=fold, cv_run=cv_run)
    log_file = ProgressLog(out / PROGRESS_FILE)
    tracker = tracking.start()

    def progress(p) -> None:
        log_file(p)
        if tracker is not None:
            tracker(p)

    log.info("training (fold model %s): %s", fold, json.dumps(config.to_dict()))
    _TRAINING.set()
    try:
        if _STOP.is_set():  # SIGTERM came just before: do not start
            raise TrainingCancelled("cancelled before training")
        summary = train_model_file(train_dir, model_path, config, test_capture_ids=spec.test_capture_ids,
                                   name=spec.model_name, version=spec.model_version, dataset_sha256=dataset_sha256,
                                   progress=progress, should_stop=_STOP.is_set, fold=fold)
        if fold is not None:
            if tracker is not None:  # the sweep's objective and this trial's own files (remote.tracking)
                tracker.finish_trial(summary)
        else:
            log_file.done(summary["metrics"], model_path)
            if tracker is not None:
                tracker.finish(summary["metrics"])
        tracking.end("FINISHED")
        return summary
    finally:
        _TRAINING.clear()
        tracking.end("FAILED")  # no-op after FINISHED
        log_file.close()


def _registry_tags(model_path: Path) -> dict:
    from core.model.files import load_model
    from remote.training_backends.model_registry import registry_tags

    try:
        return registry_tags(load_model(model_path).info)
    except (OSError, ValueError) as exc:
        log.warning("no registry tags: %s", exc)
        return {}


def _end_mlflow_run(state_path: Path, status: JobStatus) -> None:
    """End the MLflow run the local backend made for this job (Azure ML ends its own job runs)."""
    job = read_state(state_path)
    if not (job.get("tracking_uri") and job.get("mlflow_run_id")):
        return
    from remote.tracking import TrackingError, end_run

    mlflow_status = {JobStatus.COMPLETED: "FINISHED", JobStatus.CANCELED: "KILLED"}.get(status, "FAILED")
    try:
        end_run(job["tracking_uri"], job["mlflow_run_id"], mlflow_status)
    except TrackingError as exc:  # the job's outcome stands; only the run's label is missing
        log.warning("%s", exc)


def run(args: argparse.Namespace) -> int:
    state = args.state_file

    def set_status(status: JobStatus, **fields) -> None:
        log.info("status: %s", status.value)
        if state is not None:
            if status.terminal:  # the run ends first: whoever sees the final status sees the run ended
                _end_mlflow_run(state, status)
            update_state(state, status, **fields)

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    storage = None
    try:
        set_status(JobStatus.PREPARING, pid=os.getpid())
        if args.dataset is not None or args.upload_model:
            from remote.blob_storage import BlobStorage

            storage = BlobStorage(container=args.container)
        if args.dataset is not None:
            dataset_dir = out / "dataset"
            log.info("downloading dataset %s", args.dataset)
            t0 = time.perf_counter()
            storage.download_dataset(args.dataset, dataset_dir)
            log.info("dataset downloaded in %.1f s", time.perf_counter() - t0)
            from core.dataset.check import MANIFEST_FILE

            (dataset_dir / MANIFEST_FILE).write_text(json.dumps(storage.dataset_manifest(args.dataset)))
            name = args.dataset
        else:
            dataset_dir = args.dataset_dir
            name = dataset_dir.name
        dataset_sha256 = None
        if not args.skip_manifest_check:
            from core.dataset.check import manifest_sha256, verify_manifest

            t0 = time.perf_counter()
            manifest = verify_manifest(dataset_dir)
            dataset_sha256 = manifest_sha256(manifest)
            name = manifest.get("name") or name
            log.info("dataset verified against its manifest: %d files in %.1f s", len(manifest["files"]),
                     time.perf_counter() - t0)
        spec = spec_from_args(args, name)
        train_dir = select_captures(dataset_dir, spec, out)
        model_path = out / MODEL_FILE
        progress_path = out / PROGRESS_FILE

        set_status(JobStatus.RUNNING)
        if args.fold is not None:  # one sweep trial: the selection step reads what it leaves in out/
            summary = train(train_dir, out, spec, dataset_sha256, args.fold, args.cv_run)
            set_status(JobStatus.COMPLETED, metrics={"fold": args.fold, "val_oacc": summary["val_oacc"]})
            return 0
        train(train_dir, out, spec, dataset_sha256, None)

        set_status(JobStatus.FINALIZING)
        done = [e for e in read_progress(progress_path) if e.get("event") == "done"]
        metrics = {
            "metrics": done[-1].get("metrics", {}) if done else {},
            "history": [e for e in read_progress(progress_path) if e.get("event") == "epoch"],
            "spec": spec.to_dict(),
            "tags": _registry_tags(model_path),  # the local registry lists versions with these
        }
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        model = None
        if args.upload_model:
            version = args.model_version or utc_now_stamp()
            blob = storage.upload_model(model_path, spec.model_name, version, metrics=metrics)
            model = {"name": spec.model_name, "version": version, "blob": blob}
            log.info("model uploaded to %s", blob)
        set_status(JobStatus.COMPLETED, model=model, metrics=metrics["metrics"])
        return 0
    except (_Terminated, TrainingCancelled):
        cancel_requested = state is not None and read_state(state)["status"] == JobStatus.CANCEL_REQUESTED.value
        if cancel_requested:
            set_status(JobStatus.CANCELED, message="cancelled by user")
        else:
            set_status(JobStatus.FAILED, message="terminated by signal")
        return 143
    except Exception as exc:  # the job's last word: one line in the state, details in the log
        from remote.credentials import redact

        message = redact(" ".join(str(exc).split()) or exc.__class__.__name__)
        log.error("job failed: %s", message)
        set_status(JobStatus.FAILED, message=message)
        return 1


def main(argv: list[str] | None = None) -> int:
    from remote.credentials import install_log_redaction

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    install_log_redaction()
    # azure.core logs every request and response header at INFO: noise in a job log.
    logging.getLogger("azure").setLevel(logging.WARNING)

    def on_term(signum, frame):
        _STOP.set()
        if not _TRAINING.is_set():
            raise _Terminated()

    signal.signal(signal.SIGTERM, on_term)
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
