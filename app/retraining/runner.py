"""Pre-flight checks and one training run, as generator jobs (no Qt).

The dialog runs them with :func:`app.job_runner.run_job` (the app's one job runner)
and never waits on them: a run's generator yields a :class:`RunSnapshot` after
every poll, and a QTimer also reads :meth:`TrainingRun.snapshot` for the upload
progress and the clock. A run uploads the dataset (resumable, see
``remote.blob_storage``), submits the job, polls the backend (status, log tail,
per-epoch metrics) until a terminal state, and fetches the model of a Completed job.
"""
from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path

from app.retraining.run_snapshot import QUEUED_STATUSES, RunSnapshot, training_detail
from app.retraining.state import Check, RetrainingState, model_metrics
from core import defaults
from remote.tracking import read_job_metrics

POLL_S = 0.5
LOG_TAIL = 60


@dataclass(frozen=True)
class Environment:
    """Where training happens: ``storage()`` -> BlobStorage, ``backend(name, storage)`` -> TrainingBackend."""

    storage: Callable[[], object]
    backend: Callable[[str, object], object]


def default_environment(saved: Callable[[], dict] | None = None) -> Environment:
    """Storage and Azure ML from :mod:`remote.cloud_config` (env ``NEUROHSI_*`` over ``saved()``, the
    Settings ▸ Cloud values, read when a check or run starts); local jobs in ``NEUROHSI_HOME/jobs``."""
    from app.retraining.state import default_jobs_dir

    def config():
        from remote.cloud_config import resolve

        return resolve(saved() if saved is not None else {})

    def storage():
        from remote.cloud_config import make_storage

        return make_storage(config())

    def backend(name: str, storage_obj):
        if name == "local":
            from remote.training_backends import LocalBackend

            return LocalBackend(storage_obj, default_jobs_dir())
        from remote.cloud_config import make_azureml_backend

        return make_azureml_backend(config())

    return Environment(storage, backend)


def checks_job(env: Environment, backend_name: str, current_model: Path | None = None,
               ) -> Generator[str, None, tuple[list[Check], dict[str, float]]]:
    """Generator job: the pre-flight checks and the current model's stored metrics."""
    yield "checking storage, credentials and backend"
    checks = run_checks(env, backend_name)
    yield "reading the current model"
    return checks, model_metrics(current_model)


def run_checks(env: Environment, backend_name: str) -> list[Check]:
    """Credentials, storage and backend checks (blocking: call on a worker thread)."""
    checks: list[Check] = []
    try:
        storage = env.storage()
    except (ValueError, OSError) as exc:
        return [Check("credentials", False, _line(exc)), Check("storage", False, "no storage to check"),
                Check("backend", False, "needs storage")]
    try:
        storage.check()
        checks += [Check("credentials", True), Check("storage", True)]
    except (ValueError, OSError) as exc:
        text = _line(exc)
        if "credential" in text:
            checks += [Check("credentials", False, text), Check("storage", True)]
        else:
            checks += [Check("credentials", True), Check("storage", False, text)]
    try:
        backend = env.backend(backend_name, storage)
        work_dir = getattr(backend, "work_dir", None)
        if work_dir is not None:
            probe = Path(work_dir) / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        checks.append(Check("backend", True))
    except (ValueError, OSError, ImportError) as exc:
        checks.append(Check("backend", False, _line(exc)))
    return checks


def _line(exc: BaseException) -> str:
    from core.errors import one_line

    return one_line(exc)


class TrainingRun:
    """Check, upload, submit, follow, fetch and compare one job; run :meth:`job` on a worker.

    ``cancel()`` is honoured at every step. ``current_model``: the installed model the
    new one is compared with on the held-out (``test``) captures of the state.
    ``model_name`` (default ``state.model_name``) is stored in the model file with the
    version ``history`` hands out (a :class:`core.model.installed.ModelStore`),
    else ``model_version``.
    """

    def __init__(self, env: Environment, state: RetrainingState, *, dataset_name: str | None = None,
                 poll_s: float = POLL_S, current_model: str | Path | None = None,
                 model_name: str | None = None, model_version: int | str = 1, history=None) -> None:
        if state.dataset is None:
            raise ValueError("no dataset chosen")
        self.env = env
        self.backend_name = state.backend
        self.folder = Path(state.dataset)
        self.dataset_name = dataset_name or self.folder.name
        # validated now, on the GUI thread: errors show at once
        self.spec = state.job_spec(self.dataset_name, model_name=model_name, model_version=str(model_version))
        self.test_ids = set(state.test_ids)
        self.history = history  # ModelStore: hands out the model version when the job starts
        self.version_key = state.model_name or defaults.MODEL_NAME
        self.current_model = None if current_model is None else Path(current_model)
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._snap = RunSnapshot(phase="checking", started=time.monotonic(), phases=[("checking", 0.0)])
        self._cancel = threading.Event()
        self.backend = None
        self.model_dir = Path(tempfile.mkdtemp(prefix="neurohsi-model-"))

    def cancel(self) -> None:
        """Ask the job to stop (CancelRequested, then Canceled once the backend confirms)."""
        self._cancel.set()

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            return replace(self._snap, timeline=list(self._snap.timeline), epochs=list(self._snap.epochs),
                           phases=list(self._snap.phases))

    def _set(self, **fields) -> None:
        with self._lock:
            now = time.monotonic()
            status = fields.get("status")
            if status is not None and status != self._snap.status:
                self._snap.timeline.append((status, now - (self._snap.started or now)))
                if status == "Running" and self._snap.running_since is None:
                    self._snap.running_since = now
            phase = fields.get("phase")
            if phase is not None and phase != self._snap.phase:
                if phase not in ("done", "error"):
                    self._snap.phases.append((phase, now - (self._snap.started or now)))
                fields.setdefault("phase_progress", None)
                fields.setdefault("phase_detail", "")
            if phase in ("done", "error"):
                fields.setdefault("ended", now)
            for key, value in fields.items():
                setattr(self._snap, key, value)

    # ---- the job (worker thread)
    def job(self) -> Generator[RunSnapshot, None, RunSnapshot]:
        """Generator job: yields a snapshot after each step and poll, returns the final one.

        Never raises: a failure ends the run in phase "error" with a one-line message.
        Stopping the generator (closing the dialog) stops watching; the job keeps running.
        """
        try:
            if self.history is not None:  # versions count per base name, across trainings
                self.spec = replace(self.spec, model_version=str(self.history.next_version(self.version_key)))
            yield from self._check()
            if self._cancel.is_set():
                self._set(status="Canceled", phase="done")
                return self.snapshot()
            storage = self.env.storage()
            self.backend = self.env.backend(self.backend_name, storage)
            self._set(phase="uploading")
            yield self.snapshot()
            storage.upload_dataset(self.folder, self.dataset_name, progress=self._uploaded)
            yield self.snapshot()
            if self._cancel.is_set():
                self._set(status="Canceled", phase="done")
                return self.snapshot()
            job_id = self.backend.submit(self.spec)
            self._set(job_id=job_id, phase="queued", status="NotStarted")
            yield self.snapshot()
            completed = yield from self._follow(job_id)
            if completed:
                yield from self._fetch_and_compare(job_id)
            self._set(phase="done")
        except Exception as exc:  # one error sink: the dialog shows it
            self._set(phase="error", error=_line(exc))
        return self.snapshot()

    def _uploaded(self, done: int, total: int) -> None:
        self._set(upload=(done, total), phase_progress=done / total if total else None,
                  phase_detail=f"{done / 1e6:.1f} of {total / 1e6:.1f} MB")

    def _check(self) -> Generator[RunSnapshot, None, None]:
        """Decode every capture the upload will send (a truncated file fails here, not in the job)."""
        from core.dataset.check import check_dataset_files

        def progress(done: int, total: int, capture_id: str) -> None:
            self._set(phase_progress=done / total, phase_detail=f"{capture_id} ({done} of {total})")

        check_dataset_files(self.folder, progress=progress)  # the whole folder is uploaded, so all of it
        yield self.snapshot()

    def _follow(self, job_id: str) -> Generator[RunSnapshot, None, bool]:
        """Poll until the job ends; True when it Completed."""
        cancel_sent = False
        while True:
            if self._cancel.is_set() and not cancel_sent:
                cancel_sent = True
                self._set(status="CancelRequested")
                self.backend.cancel(job_id)  # blocks up to the backend's grace period, here on the worker
            status = self.backend.status(job_id)
            events = read_job_metrics(self.backend, job_id)  # MLflow run (or the backend's fallback)
            epochs = [e for e in events if e.get("event") == "epoch"]
            fields = dict(
                status=status.value,
                log=self.backend.logs(job_id, tail=LOG_TAIL),
                epochs=epochs,
                metrics=next((e.get("metrics") for e in reversed(events) if e.get("event") == "done"), None),
            )
            progress, detail = training_detail(epochs)
            if status.value in QUEUED_STATUSES and not epochs:
                fields["phase"] = "queued"
            elif not status.terminal and (progress is None or progress < 1.0):
                fields.update(phase="training", phase_progress=progress, phase_detail=detail)
            elif not status.terminal:
                fields["phase"] = "selecting"  # every fold model trained: choosing the winner, saving
            self._set(**fields)
            if status.terminal:
                return status.value == "Completed"
            yield self.snapshot()
            self._cancel.wait(self.poll_s)

    def _fetch_and_compare(self, job_id: str) -> Generator[RunSnapshot, None, None]:
        from core.model.files import load_model

        if self.snapshot().phase != "selecting":
            self._set(phase="selecting")  # a short job may end between two polls
        self._set(phase="downloading")
        yield self.snapshot()
        path = Path(self.backend.fetch_model(job_id, self.model_dir))
        new = load_model(path)
        self._set(model_path=path, model_metrics=model_metrics(path), new_info=new.info, phase="evaluating")
        yield self.snapshot()
        installed = None
        if self.current_model is not None and self.current_model.is_file():
            try:
                installed = load_model(self.current_model)
            except (OSError, ValueError):
                installed = None
        self._set(installed_info=None if installed is None else installed.info)
        if not self.test_ids:
            self._set(comparison_note="No capture was held out, so the models cannot be compared fairly: "
                                      "set one capture to 'Held-out test' and train again.")
            return
        from core.dataset.folders import read_dataset
        from core.training.comparison import compare_models

        captures = [c for c in read_dataset(self.folder) if c.capture_id in self.test_ids]
        comparison = compare_models(installed, new, captures)
        self._set(comparison=comparison, captures_profile=captures[0].profile().id)
