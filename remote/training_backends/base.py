"""What every training backend shares: job status vocabulary, the job spec and the interface.

Status names are Azure ML's own (``Job.status``), so the local backend, the Azure ML
backend, the CLI and the GUI speak one vocabulary.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

from core import defaults
from core.errors import NeuroHSIError, one_line
from core.training.config import TrainingConfig, check_fields


class JobStatus(str, Enum):
    """Azure ML job states (a subset of ``azure.ai.ml`` ``JobStatus``), usable as plain strings."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    STARTING = "Starting"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    CANCEL_REQUESTED = "CancelRequested"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @classmethod
    def parse(cls, text: str) -> JobStatus:
        """Status from Azure ML's text; unknown live states (e.g. 'Provisioning') map to Starting."""
        for member in cls:
            if member.value.lower() == str(text).lower():
                return member
        if str(text).lower() in {"notresponding", "paused", "unknown"}:
            return cls.RUNNING
        if str(text).lower() in {"provisioning", "scheduled"}:
            return cls.STARTING
        raise JobError(f"unknown job status {text!r}")


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class JobError(NeuroHSIError, ValueError):
    """A job cannot be submitted, found, cancelled or fetched."""


TRAINING_FIELDS = frozenset(f.name for f in fields(TrainingConfig))


def _double_cv() -> TrainingConfig:
    return TrainingConfig(cross_validation="double")


@dataclass(frozen=True)
class JobSpec:
    """One training run: which uploaded dataset, which captures, which hyper-parameters.

    ``training`` is the one settings type (:class:`core.training.config.TrainingConfig`,
    validated there); a job's default is the thesis's double cross-validation.
    ``train_capture_ids`` empty means every capture not held out in ``test_capture_ids``.
    The backend writes :meth:`to_dict` as the job's ``spec.json``; the job reads it back.
    """

    dataset: str
    train_capture_ids: tuple[str, ...] = ()
    test_capture_ids: tuple[str, ...] = ()
    training: TrainingConfig = field(default_factory=_double_cv)
    model_name: str = defaults.MODEL_NAME
    model_version: str = "1"  # stored in the model file (ModelInfo.version); increments per retrained model

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_capture_ids", tuple(self.train_capture_ids))
        object.__setattr__(self, "test_capture_ids", tuple(self.test_capture_ids))
        object.__setattr__(self, "model_version", str(self.model_version))
        if not isinstance(self.training, TrainingConfig):
            raise JobError(f"training must be a TrainingConfig, got {type(self.training).__name__}")
        for what, value in (("dataset", self.dataset), ("model_name", self.model_name),
                            ("model_version", self.model_version)):
            if not isinstance(value, str) or not _ID_RE.match(value):
                raise JobError(f"{what} must be letters, digits, '.', '_' or '-', got {value!r}")
        for cid in self.train_capture_ids + self.test_capture_ids:
            if not isinstance(cid, str) or not _ID_RE.match(cid):
                raise JobError(f"invalid capture id {cid!r}")
        overlap = set(self.train_capture_ids) & set(self.test_capture_ids)
        if overlap:
            raise JobError(f"captures both trained on and held out: {', '.join(sorted(overlap))}")

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "train_capture_ids": list(self.train_capture_ids),
                "test_capture_ids": list(self.test_capture_ids), "training": self.training.to_dict(),
                "model_name": self.model_name, "model_version": self.model_version}

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        """The inverse of :meth:`to_dict`; JobError naming what is wrong."""
        try:
            check_fields(cls, data, what="job spec fields")
            training = TrainingConfig.from_dict(data.get("training", _double_cv().to_dict()))
        except (TypeError, ValueError) as exc:
            raise JobError(f"job spec: {exc}") from None
        return cls(**{**data, "training": training})

    @classmethod
    def read(cls, path: Path) -> JobSpec:
        """The ``spec.json`` a backend wrote (JobError naming the file when it is not one)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JobError(f"{path}: cannot read the job spec ({one_line(exc)})") from None
        try:
            return cls.from_dict(data)
        except JobError as exc:
            raise JobError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class JobInfo:
    """What a backend knows about one job."""

    job_id: str
    backend: str
    status: JobStatus
    spec: JobSpec | None
    created: str | None = None
    updated: str | None = None
    message: str | None = None  # e.g. why it failed (one line, no secrets)
    model: dict | None = None  # {"name", "version", "blob"} once uploaded

    def to_dict(self) -> dict:
        return {
            "job_id": self.job_id,
            "backend": self.backend,
            "status": self.status.value,
            "terminal": self.status.terminal,
            "spec": None if self.spec is None else self.spec.to_dict(),
            "created": self.created,
            "updated": self.updated,
            "message": self.message,
            "model": self.model,
        }


def audit_spec(spec: JobSpec) -> dict:
    """What the audit log keeps of a submitted job: dataset, capture ids, hyper-parameters (no secrets)."""
    return {
        "dataset": spec.dataset, "train_captures": len(spec.train_capture_ids),
        "test_captures": len(spec.test_capture_ids), "training": spec.training.to_dict(),
        "model_name": spec.model_name, "model_version": spec.model_version,
    }


@runtime_checkable
class TrainingBackend(Protocol):
    """The interface the CLI and the GUI drive; implemented by LocalBackend and AzureMLBackend."""

    name: str

    def submit(self, spec: JobSpec) -> str:
        """Start a job; return its id at once (the job runs in the background)."""

    def status(self, job_id: str) -> JobStatus:
        """Current status (Azure ML vocabulary)."""

    def info(self, job_id: str) -> JobInfo:
        """Status plus spec, times, message and model location."""

    def logs(self, job_id: str, *, tail: int = 200) -> str:
        """The last ``tail`` lines of the job's log."""

    def follow_logs(self, job_id: str, write: Callable[[str], None], *, poll_s: float = 0.5) -> JobStatus:
        """Pass the job's log to ``write`` as it grows, until the job ends; return the final status."""

    def metrics(self, job_id: str) -> list[dict]:
        """Per-epoch events as training reports them: ``{"event": "epoch", "fold", "epoch", "epochs", "loss", "val_oacc"}``,
        then ``{"event": "done", "metrics": {...}}``."""

    def cancel(self, job_id: str) -> JobStatus:
        """Ask the job to stop; return the status after the request."""

    def fetch_model(self, job_id: str, dest: Path) -> Path:
        """Download the trained model of a Completed job to ``dest``; return the file path."""
