"""What one training run looks like at a moment (no Qt): phase, its own progress, curves, summary.

A run goes through :data:`PHASES` in order; each phase reports its own progress
(captures checked, bytes uploaded, fold models trained) or None when it cannot
be measured (waiting in the queue). :func:`outer_fold_curves` turns the
per-model epoch events into one curve per outer fold (the mean of its inner
models), which is what a person can read on a chart of 25 models.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PHASES = ("checking", "uploading", "queued", "training", "selecting", "downloading", "evaluating")
PHASE_TITLES = {
    "checking": "Checking the captures",
    "uploading": "Uploading",
    "queued": "Waiting for the machine",
    "training": "Training",
    "selecting": "Selecting the best model",
    "downloading": "Downloading the model",
    "evaluating": "Comparing with the installed model",
    "done": "Finished",
    "error": "Failed",
}
QUEUED_STATUSES = {"NotStarted", "Queued", "Preparing", "Starting"}


@dataclass
class RunSnapshot:
    """What the dialog shows; a copy taken under the run's lock."""

    phase: str = "idle"  # one of PHASES, then "done" or "error"
    phase_progress: float | None = None  # 0..1 within the phase; None: not measurable
    phase_detail: str = ""  # e.g. "fold 7 of 25, epoch 40 of 100"
    phases: list[tuple[str, float]] = field(default_factory=list)  # (phase, seconds since start when it began)
    upload: tuple[int, int] = (0, 0)  # bytes done, total
    job_id: str | None = None
    status: str | None = None  # Azure ML vocabulary
    timeline: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds since start)
    log: str = ""  # the raw job log (tail)
    epochs: list[dict] = field(default_factory=list)  # progress events {"event": "epoch", ...}
    metrics: dict | None = None  # from the "done" event
    model_path: Path | None = None  # fetched model of a Completed job
    model_metrics: dict[str, float] = field(default_factory=dict)  # flat metrics stored in that model file
    comparison: object | None = None  # core.training.comparison.Comparison on the held-out captures
    comparison_note: str = ""  # why there is no comparison
    new_info: object | None = None  # ModelInfo of the fetched model
    installed_info: object | None = None  # ModelInfo of the installed model, if any
    captures_profile: str | None = None  # camera profile of the dataset's captures
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
        """Estimated seconds of training left: time spent running scaled by the progress still to go."""
        f = self.fraction
        if f is None or f <= 0 or self.running_since is None or self.terminal:
            return None
        spent = (time.monotonic() if now is None else now) - self.running_since
        return spent * (1.0 - f) / f

    @property
    def outcome(self) -> str:
        """"Finished" for a Completed job; "Cancelled" or "Failed" otherwise (never "Finished" for those)."""
        if self.phase == "error" or self.status == "Failed":
            return "Failed"
        if self.status in ("Canceled", "CancelRequested"):
            return "Cancelled"
        return PHASE_TITLES["done"]

    @property
    def phase_title(self) -> str:
        if self.phase == "done":
            return self.outcome
        title = PHASE_TITLES.get(self.phase, self.phase)
        return f"{title}: {self.phase_detail}" if self.phase_detail else title

    def summary(self) -> list[str]:
        """Plain lines for people: each phase with when it began, then the outcome."""
        lines = [f"{_clock(t)}  {PHASE_TITLES.get(p, p)}" for p, t in self.phases]
        if self.upload[1]:
            lines.append(f"        {self.upload[0] / 1e6:.1f} of {self.upload[1] / 1e6:.1f} MB uploaded")
        if self.comparison is not None:
            lines.append(f"        {self.comparison.verdict}")
        elif self.comparison_note:
            lines.append(f"        {self.comparison_note}")
        if self.phase == "done":
            lines.append(f"{_clock(self.elapsed_s())}  {self.outcome} ({self.status or 'done'})")
        elif self.phase == "error":
            lines.append(f"{_clock(self.elapsed_s())}  Failed: {self.error}")
        return lines


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m:3d}:{s:02d}"


def training_detail(epochs: list[dict]) -> tuple[float | None, str]:
    """(progress 0..1, "epoch e of E, n fold models together") from the epoch events so far.

    Fold models train in lockstep (all at once), so the fold of the newest event says
    nothing about progress: "fold 25 of 25" at 3 % misled. The epoch does.
    """
    if not epochs:
        return None, ""
    last = epochs[-1]
    epoch, total = int(last.get("epoch", 0)), int(last.get("epochs") or 0)
    fraction = last.get("fraction")
    progress = float(fraction) if isinstance(fraction, (int, float)) else (epoch / total if total else None)
    if last.get("fold") is None:
        return progress, f"epoch {epoch} of {total}"
    n = max(int(e["fold"]) for e in epochs if e.get("fold") is not None) + 1
    return progress, f"epoch {epoch} of {total}, {n} fold models together"


def _curve_name(fold: int | None, k: int | None) -> str:
    if fold is None:
        return "model"
    return f"outer fold {fold // k + 1}" if k else f"fold model {fold + 1}"


def outer_fold_curves(epochs: list[dict], key: str) -> dict[str, tuple[list[int], list[float]]]:
    """One curve per outer fold: ``{"outer fold 1": (epochs, mean of key over its inner models)}``.

    No-cv events (fold None) give one curve named "model". Double-cv fold model m
    belongs to outer fold ``m // K`` with ``K = sqrt(number of fold models)``; while the
    count is not a square (fold models still to report) each gets its own curve.
    Events whose ``key`` is None are skipped.
    """
    folds = {int(e["fold"]) for e in epochs if e.get("fold") is not None}
    n = max(folds) + 1 if folds else 0
    k = int(round(np.sqrt(n))) if n else None
    if k is not None and k * k != n:
        k = None
    sums: dict[str, dict[int, list[float]]] = {}
    for e in epochs:
        value = e.get(key)
        if value is None:
            continue
        name = _curve_name(None if e.get("fold") is None else int(e["fold"]), k)
        sums.setdefault(name, {}).setdefault(int(e["epoch"]), []).append(float(value))
    out = {}
    for name in sorted(sums, key=lambda n: (len(n), n)):
        xs = sorted(sums[name])
        out[name] = (xs, [float(np.mean(sums[name][x])) for x in xs])
    return out
