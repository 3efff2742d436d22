"""The retraining dialog's state (no Qt): dataset table, hyper-parameters, pre-flight checks, model install.

The dialog binds its widgets to a :class:`RetrainingState` (STYLE.md 2); tests set
the state directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import defaults
from core.classes import CLASS_IDS, class_table
from core.errors import DatasetError
from core.fileio import load_json_file
from core.training.config import TrainingConfig

BACKENDS = ("local", "azureml")
MIN_CLASS_PIXELS = 100  # below this a class is flagged: too few patches to learn it


@dataclass(frozen=True)
class CaptureRow:
    """One capture folder of the dataset: its label counts per class id (1..5)."""

    capture_id: str
    folder: Path
    patient: str | None
    counts: dict[int, int] | None  # None: no labels.png
    problem: str | None = None  # why it cannot be used (missing frames, unreadable labels)

    @property
    def labelled(self) -> bool:
        return self.counts is not None and sum(self.counts.values()) > 0 and self.problem is None


def scan_dataset(root: str | Path) -> list[CaptureRow]:
    """Capture rows of ``root/<capture_id>/`` folders, sorted by id.

    Folders with neither raw.tif nor labels.png are skipped; labels without their frames
    are listed with the reason (see :func:`core.dataset.camera_captures.why_not_a_capture`).
    """
    from core.dataset.camera_captures import why_not_a_capture
    from core.labels.maps import read_label_png
    from core.labels.store import reconcile_counts

    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder does not exist")
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (folder / "raw.tif").is_file() and not (folder / "labels.png").is_file():
            continue  # neither a capture nor labels: not ours
        problem = why_not_a_capture(folder)  # labels without frames are listed, with why and how to fix it
        patient = None
        try:
            meta = load_json_file(folder / "meta.json", DatasetError)
            patient = meta.get("patient") if isinstance(meta, dict) else None
        except (OSError, ValueError):  # shown as a capture without a patient; checking the dataset names the problem
            pass
        counts = None
        if (folder / "labels.png").is_file():
            try:
                reconcile_counts(folder)  # meta.json's counts as labels.png says (a killed save left them stale)
                labels = read_label_png(folder / "labels.png")
                n = np.bincount(labels.reshape(-1), minlength=max(CLASS_IDS) + 1)
                counts = {c: int(n[c]) for c in CLASS_IDS}
            except DatasetError as exc:
                problem = problem or exc.problem
        rows.append(CaptureRow(folder.name, folder, patient, counts, problem))
    return rows


@dataclass(frozen=True)
class Check:
    """One pre-flight check: ``ok`` or the reason it fails (one line)."""

    name: str
    ok: bool
    message: str = ""


@dataclass
class RetrainingState:
    dataset: Path | None = None
    rows: list[CaptureRow] = field(default_factory=list)
    train_ids: set[str] = field(default_factory=set)
    test_ids: set[str] = field(default_factory=set)
    # the thesis's defaults and its double cross-validation; validated on every change (frozen: replaced whole)
    params: TrainingConfig = field(default_factory=lambda: TrainingConfig(cross_validation="double"))
    backend: str = "local"
    model_name: str = defaults.MODEL_NAME
    checks: list[Check] = field(default_factory=list)
    running: bool = False

    def load_dataset(self, root: str | Path) -> None:
        """Scan ``root`` (reads every label PNG: call off the GUI thread) and :meth:`set_dataset`."""
        self.set_dataset(root, scan_dataset(root))

    def set_dataset(self, root: str | Path, rows: list[CaptureRow]) -> None:
        """Use scanned ``rows`` of ``root``; every labelled capture is selected for training, none held out."""
        self.dataset = Path(root)
        self.rows = list(rows)
        self.train_ids = {r.capture_id for r in self.rows if r.labelled}
        self.test_ids = set()

    def set_role(self, capture_id: str, role: str) -> None:
        """``role``: "train", "test" (held out) or "skip"."""
        if capture_id not in {r.capture_id for r in self.rows}:
            raise ValueError(f"no capture {capture_id!r} in the dataset")
        if role not in ("train", "test", "skip"):
            raise ValueError(f"role must be train, test or skip, got {role!r}")
        self.train_ids.discard(capture_id)
        self.test_ids.discard(capture_id)
        if role == "train":
            self.train_ids.add(capture_id)
        elif role == "test":
            self.test_ids.add(capture_id)

    def role(self, capture_id: str) -> str:
        return "train" if capture_id in self.train_ids else "test" if capture_id in self.test_ids else "skip"

    def train_counts(self) -> dict[int, int]:
        """Labelled pixels per class over the training captures."""
        total = {c: 0 for c in CLASS_IDS}
        for row in self.rows:
            if row.capture_id in self.train_ids and row.counts:
                for c, n in row.counts.items():
                    total[c] += n
        return total

    def class_warnings(self, minimum: int = MIN_CLASS_PIXELS) -> list[str]:
        """One line per class with fewer than ``minimum`` labelled training pixels."""
        names = class_table()
        return [
            f"{names.by_id(c).name}: only {n} labelled pixels (< {minimum})"
            for c, n in self.train_counts().items()
            if n < minimum
        ]

    def labels_check(self) -> Check:
        if self.dataset is None:
            return Check("labels", False, "choose a dataset folder")
        if not self.train_ids:
            return Check("labels", False, "no labelled capture selected for training")
        for row in self.rows:
            if row.capture_id in self.train_ids | self.test_ids:
                if row.problem:
                    return Check("labels", False, f"{row.capture_id}: {row.problem}")
                if not row.labelled:
                    return Check("labels", False, f"{row.capture_id}: no labels")
        return Check("labels", True)

    def job_spec(self, dataset_name: str, *, model_name: str | None = None, model_version: str = "1"):
        """The :class:`remote.training_backends.JobSpec` of this state (raises JobError on bad values).

        ``model_name`` (default ``state.model_name``) and ``model_version`` go into the model file.
        """
        from remote.training_backends import JobSpec

        return JobSpec(
            dataset=dataset_name,
            train_capture_ids=tuple(sorted(self.train_ids)),
            test_capture_ids=tuple(sorted(self.test_ids)),
            training=self.params, model_name=model_name or self.model_name, model_version=str(model_version),
        )

    @property
    def start_blocker(self) -> str | None:
        """Why Start is disabled now (None when it may start)."""
        if self.running:
            return "a training job is running"
        labels = self.labels_check()
        if not labels.ok:
            return f"labels: {labels.message}"
        if not self.checks:
            return "pre-flight checks have not run yet"
        for check in self.checks:
            if not check.ok:
                return f"{check.name}: {check.message}"
        return None


def flat_metrics(metrics: dict | None) -> dict[str, float]:
    """Scalar metrics, nested dicts flattened as ``key.sub`` (lists and matrices left out)."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[str(key)] = float(value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{key}.{sub}"] = float(v)
    return out


def model_metrics(path: str | Path | None) -> dict[str, float]:
    """Flat metrics stored in a model file; {} when there is none or it cannot be read (reads the file)."""
    if path is None or not Path(path).is_file():
        return {}
    from core.model.files import load_model

    try:
        return flat_metrics(load_model(path).info.metrics)
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------- paths


def default_jobs_dir() -> Path:
    """``NEUROHSI_HOME/jobs``: local training jobs."""
    from core.model.installed import neurohsi_home

    return neurohsi_home() / "jobs"
