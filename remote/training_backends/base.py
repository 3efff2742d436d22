"""What every training backend shares: job status vocabulary, the job spec and the interface.

Status names are Azure ML's own (``Job.status``), so the local backend, the Azure ML
backend, the CLI and the GUI speak one vocabulary.
"""
from __future__ import annotations

from collections.abc import Callable

import re
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

from core import defaults
from core.errors import NeuroHSIError


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

CROSS_VALIDATION_MODES = ("none", "double")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class JobError(NeuroHSIError, ValueError):
    """A job cannot be submitted, found, cancelled or fetched."""


@dataclass(frozen=True)
class JobSpec:
    """One training run: which uploaded dataset, which captures, which hyper-parameters.

    Defaults are the thesis's (Table 4.1): 100 epochs, batch 16, 7 x 7 patches,
    5 folds, Adam lr 1e-3, double cross-validation. ``train_capture_ids`` empty means
    every capture not held out in ``test_capture_ids``.
    """

    dataset: str
    train_capture_ids: tuple[str, ...] = ()
    test_capture_ids: tuple[str, ...] = ()
    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    patch_size: int = defaults.PATCH_SIZE
    folds: int = defaults.FOLDS
    lr: float = defaults.LEARNING_RATE
    cross_validation: str = "double"
    seed: int = defaults.SEED
    model_name: str = "conv2dnet"
    model_version: str = "1"  # stored in the model file (ModelInfo.version); increments per retrained model

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_capture_ids", tuple(self.train_capture_ids))
        object.__setattr__(self, "test_capture_ids", tuple(self.test_capture_ids))
        object.__setattr__(self, "model_version", str(self.model_version))
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
        for what, value, low in (
            ("epochs", self.epochs, 1),
            ("batch_size", self.batch_size, 1),
            ("patch_size", self.patch_size, 3),
            ("folds", self.folds, 2),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise JobError(f"{what} must be an integer >= {low}, got {value!r}")
        if self.patch_size % 2 == 0:
            raise JobError(f"patch_size must be odd, got {self.patch_size}")
        if not isinstance(self.lr, (int, float)) or not (0 < self.lr < 1):
            raise JobError(f"lr must be in (0, 1), got {self.lr!r}")
        if self.cross_validation not in CROSS_VALIDATION_MODES:
            raise JobError(f"cross_validation must be one of {CROSS_VALIDATION_MODES}, got {self.cross_validation!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise JobError(f"seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train_capture_ids"] = list(self.train_capture_ids)
        d["test_capture_ids"] = list(self.test_capture_ids)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> JobSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise JobError(f"unknown job spec fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def train_cli_args(self) -> list[str]:
        """Hyper-parameter flags for the training job script (``remote.training_job``)."""
        args = [
            "--epochs", str(self.epochs),
            "--batch-size", str(self.batch_size),
            "--patch-size", str(self.patch_size),
            "--folds", str(self.folds),
            "--lr", repr(float(self.lr)),
            "--cross-validation", self.cross_validation,
            "--seed", str(self.seed),
            "--model-name", self.model_name,
            "--version", self.model_version,
        ]
        for cid in self.train_capture_ids:
            args += ["--train-capture", cid]
        for cid in self.test_capture_ids:
            args += ["--test-capture", cid]
        return args


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
        "test_captures": len(spec.test_capture_ids), "epochs": spec.epochs, "batch_size": spec.batch_size,
        "lr": spec.lr, "folds": spec.folds, "seed": spec.seed, "model_name": spec.model_name,
        "model_version": spec.model_version,
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
