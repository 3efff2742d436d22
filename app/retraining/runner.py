"""Pre-flight checks and one training run, as generator jobs (no Qt).

The dialog runs them with :func:`app.workers.start_job` (the app's one job runner)
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from app.retraining.state import Check, RetrainingState, model_metrics

POLL_S = 0.5
LOG_TAIL = 60


@dataclass(frozen=True)
class Environment:
    """Where training happens: ``storage()`` -> BlobStorage, ``backend(name, storage)`` -> TrainingBackend."""

    storage: Callable[[], object]
    backend: Callable[[str, object], object]


def default_environment() -> Environment:
    """Storage from env/keyring; local jobs in ``NEUROHSI_HOME/jobs``; Azure ML from env settings."""
    import os

    from app.retraining.state import default_jobs_dir

    def storage():
        from remote.blob_storage import BlobStorage

        return BlobStorage(container=os.environ.get("NEUROHSI_CONTAINER", "neurohsi"))

    def backend(name: str, storage_obj):
        if name == "local":
            from remote.training_backends import LocalBackend

            return LocalBackend(storage_obj, default_jobs_dir())
        from remote.training_backends.base import JobError

        needed = ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE", "AZUREML_COMPUTE")
        missing = [k for k in needed if not os.environ.get(k)]
        if missing:
            raise JobError(f"Azure ML workspace not configured: set {', '.join(missing)} (see docs/cloud.md)")
        from remote.training_backends.azureml import AzureMLBackend

        return AzureMLBackend(
            os.environ["AZUREML_SUBSCRIPTION_ID"], os.environ["AZUREML_RESOURCE_GROUP"],
            os.environ["AZUREML_WORKSPACE"], os.environ["AZUREML_COMPUTE"],
            os.environ.get("AZUREML_ENVIRONMENT", "neurohsi-train@latest"),
        )

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
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


@dataclass
class RunSnapshot:
    """What the dialog shows; a copy taken under the run's lock."""

    phase: str = "idle"  # idle, uploading, submitted, done, error
    upload: tuple[int, int] = (0, 0)  # bytes done, total
    job_id: str | None = None
    status: str | None = None  # Azure ML vocabulary
    timeline: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds since start)
    log: str = ""
    epochs: list[dict] = field(default_factory=list)  # progress events {"event": "epoch", ...}
    metrics: dict | None = None  # from the "done" event
    model_path: Path | None = None  # fetched model of a Completed job
    model_metrics: dict[str, float] = field(default_factory=dict)  # flat metrics stored in that model file
    error: str | None = None
    started: float = 0.0  # time.monotonic() of Start
    running_since: float | None = None
    ended: float | None = None  # time.monotonic() when the run ended: the clock stops there

    @property
    def terminal(self) -> bool:
        return self.phase in ("done", "error")

    @property
    def fraction(self) -> float | None:
        """Training progress 0..1 from the last epoch event."""
        if not self.epochs:
            return None
        last = self.epochs[-1]
        if isinstance(last.get("fraction"), (int, float)):
            return float(last["fraction"])
        epochs = last.get("epochs") or 0
        return float(last.get("epoch", 0)) / epochs if epochs else None

    def elapsed_s(self, now: float | None = None) -> float:
        """Seconds since Start, up to the end of the run."""
        if not self.started:
            return 0.0
        end = self.ended if self.ended is not None else (time.monotonic() if now is None else now)
        return end - self.started

    def remaining_s(self, now: float | None = None) -> float | None:
        """Estimated seconds left: time spent running scaled by the progress still to go."""
        f = self.fraction
        if f is None or f <= 0 or self.running_since is None or self.terminal:
            return None
        spent = (time.monotonic() if now is None else now) - self.running_since
        return spent * (1.0 - f) / f


class TrainingRun:
    """Upload, submit and follow one job; run :meth:`job` on a worker. ``cancel()`` is honoured at every step."""

    def __init__(self, env: Environment, state: RetrainingState, *, dataset_name: str | None = None,
                 poll_s: float = POLL_S) -> None:
        if state.dataset is None:
            raise ValueError("no dataset chosen")
        self.env = env
        self.backend_name = state.backend
        self.folder = Path(state.dataset)
        self.dataset_name = dataset_name or self.folder.name
        self.spec = state.job_spec(self.dataset_name)  # validated now, on the GUI thread: errors show at once
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._snap = RunSnapshot(phase="uploading", started=time.monotonic())
        self._cancel = threading.Event()
        self.backend = None
        self.model_dir = Path(tempfile.mkdtemp(prefix="neurohsi-model-"))

    def cancel(self) -> None:
        """Ask the job to stop (CancelRequested, then Canceled once the backend confirms)."""
        self._cancel.set()

    def snapshot(self) -> RunSnapshot:
        with self._lock:
            return replace(self._snap, timeline=list(self._snap.timeline), epochs=list(self._snap.epochs))

    def _set(self, **fields) -> None:
        with self._lock:
            status = fields.get("status")
            if status is not None and status != self._snap.status:
                self._snap.timeline.append((status, time.monotonic() - (self._snap.started or time.monotonic())))
                if status == "Running" and self._snap.running_since is None:
                    self._snap.running_since = time.monotonic()
            if fields.get("phase") in ("done", "error"):
                fields.setdefault("ended", time.monotonic())
            for key, value in fields.items():
                setattr(self._snap, key, value)

    # ---- the job (worker thread)
    def job(self) -> Generator[RunSnapshot, None, RunSnapshot]:
        """Generator job: yields a snapshot after each step and poll, returns the final one.

        Never raises: a failure ends the run in phase "error" with a one-line message.
        Stopping the generator (closing the dialog) stops watching; the job keeps running.
        """
        try:
            storage = self.env.storage()
            self.backend = self.env.backend(self.backend_name, storage)
            storage.upload_dataset(self.folder, self.dataset_name,
                                   progress=lambda done, total: self._set(upload=(done, total)))
            yield self.snapshot()
            if self._cancel.is_set():
                self._set(status="Canceled", phase="done")
                return self.snapshot()
            job_id = self.backend.submit(self.spec)
            self._set(job_id=job_id, phase="submitted", status="NotStarted")
            yield self.snapshot()
            yield from self._follow(job_id)
        except Exception as exc:  # one error sink: the dialog shows it
            self._set(phase="error", error=_line(exc))
        return self.snapshot()

    def _follow(self, job_id: str) -> Generator[RunSnapshot, None, None]:
        cancel_sent = False
        while True:
            if self._cancel.is_set() and not cancel_sent:
                cancel_sent = True
                self._set(status="CancelRequested")
                self.backend.cancel(job_id)  # blocks up to the backend's grace period, here on the worker
            status = self.backend.status(job_id)
            events = self.backend.metrics(job_id)
            self._set(
                status=status.value,
                log=self.backend.logs(job_id, tail=LOG_TAIL),
                epochs=[e for e in events if e.get("event") == "epoch"],
                metrics=next((e.get("metrics") for e in reversed(events) if e.get("event") == "done"), None),
            )
            if status.terminal:
                break
            yield self.snapshot()
            self._cancel.wait(self.poll_s)
        if status.value == "Completed":
            path = Path(self.backend.fetch_model(job_id, self.model_dir))
            self._set(model_path=path, model_metrics=model_metrics(path))
        self._set(phase="done")
