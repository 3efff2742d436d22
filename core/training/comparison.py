"""A fair comparison of the installed and a newly trained model, and what installing the new one changes.

Fair means: both models classify the same held-out captures (labelled pixels the
new model never trained on) and are scored with the same metrics
(:func:`core.training.metrics.classification_metrics`: OACC, per-class sensitivity and
specificity, confusion matrix). Metrics stored in the model files are never mixed
in: they come from different data (training folds, other captures).

:func:`compare_models` gives a :class:`Comparison`: one :class:`MetricRow` per metric
with plain names ("Tumour tissue: sensitivity"), and a one-line verdict ("The new
model is better on tumour tissue sensitivity by 4.0 points; worse on dura mater
specificity by 2.1 points."). :func:`install_problems` lists, in plain words,
what would stop the new model from classifying the captures the installed one
classifies (bands, camera profile, classes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ModelFileError
from core.model.files import check_runs_on
from core.training.metrics import classification_metrics

MARGIN_POINTS = 1.0  # differences smaller than this (percentage points) count as "the same"
VERDICT_ITEMS = 2  # at most this many metrics named on each side of the verdict


@dataclass(frozen=True)
class ModelScore:
    """One model on the held-out captures: ``metrics`` (classification_metrics dict) or why it has none."""

    label: str
    metrics: dict | None
    problem: str | None = None


@dataclass(frozen=True)
class MetricRow:
    """One metric of both models, as fractions 0..1 (None: undefined or not evaluated)."""

    key: str  # "oacc", "sensitivity:2", "specificity:5"
    title: str  # plain name for people
    installed: float | None
    new: float | None

    @property
    def delta_points(self) -> float | None:
        """New minus installed, in percentage points."""
        if self.installed is None or self.new is None:
            return None
        return 100.0 * (self.new - self.installed)


@dataclass(frozen=True)
class Comparison:
    installed: ModelScore | None  # None: no installed model
    new: ModelScore
    capture_ids: tuple[str, ...]
    n_pixels: int
    rows: tuple[MetricRow, ...]
    verdict: str

    def to_dict(self) -> dict:
        return {
            "capture_ids": list(self.capture_ids), "n_pixels": self.n_pixels, "verdict": self.verdict,
            "installed": None if self.installed is None else vars(self.installed),
            "new": vars(self.new),
            "rows": [{"key": r.key, "title": r.title, "installed": r.installed, "new": r.new} for r in self.rows],
        }


def evaluate_on_patch_set(model, data) -> dict:
    """:func:`classification_metrics` of ``model`` (a LoadedModel) on a :class:`core.model.patches.PatchSet`."""
    from core.training.trainer import predict_patches

    if tuple(data.class_ids) != tuple(model.info.class_ids):
        raise ModelFileError(model.path, f"model classes {list(model.info.class_ids)} differ from the "
                                         f"captures' {list(data.class_ids)}")
    if data.patches.shape[1] != model.info.n_bands:
        raise ModelFileError(model.path, f"model {model.info.name!r} expects {model.info.n_bands} bands, "
                                         f"the captures have {data.patches.shape[1]}")
    pred = predict_patches(model.net, data.patches)
    return classification_metrics(data.targets, pred, data.class_ids, model.info.class_names)


def metric_rows(installed: dict | None, new: dict | None) -> tuple[MetricRow, ...]:
    """OACC, then sensitivity and specificity of every class, for two metrics dicts (either may be None)."""
    base = new or installed
    if base is None:
        return ()
    names, ids = base["class_names"], base["class_ids"]

    def value(metrics: dict | None, key: str, i: int | None = None) -> float | None:
        if metrics is None:
            return None
        v = metrics[key] if i is None else metrics[key][i]
        return None if v is None else float(v)

    rows = [MetricRow("oacc", "Overall accuracy (OACC)", value(installed, "oacc"), value(new, "oacc"))]
    for what in ("sensitivity", "specificity"):
        for i, (class_id, name) in enumerate(zip(ids, names)):
            rows.append(MetricRow(f"{what}:{class_id}", f"{name}: {what}", value(installed, what, i),
                                  value(new, what, i)))
    return tuple(rows)


def _plain(row: MetricRow) -> str:
    if row.key == "oacc":
        return "overall accuracy"
    name, what = row.title.split(": ")
    return f"{name.lower()} {what}"


def verdict(rows: tuple[MetricRow, ...], *, margin_points: float = MARGIN_POINTS) -> str:
    """One line: where the new model is better and worse by at least ``margin_points``: overall accuracy
    first when it changed, then the largest other differences."""
    deltas = [(r, r.delta_points) for r in rows if r.delta_points is not None]
    if not deltas:
        oacc = next((r.new for r in rows if r.key == "oacc"), None)
        return ("No installed model to compare with on these captures" +
                ("." if oacc is None else f"; the new model's overall accuracy is {100 * oacc:.1f} %."))
    # overall accuracy first when it moved, then the largest other changes
    better = sorted((d for d in deltas if d[1] >= margin_points), key=lambda d: (d[0].key != "oacc", -d[1]))
    worse = sorted((d for d in deltas if d[1] <= -margin_points), key=lambda d: (d[0].key != "oacc", d[1]))
    better, worse = better[:VERDICT_ITEMS], worse[:VERDICT_ITEMS]
    if not better and not worse:
        return f"The two models score within {margin_points:g} point of each other on every metric."

    def listed(items) -> str:
        return " and ".join(f"{_plain(r)} by {abs(d):.1f} points" for r, d in items)

    parts = []
    if better:
        parts.append(f"better on {listed(better)}")
    if worse:
        parts.append(f"worse on {listed(worse)}")
    return "The new model is " + "; ".join(parts) + "."


def compare_models(installed, new, captures) -> Comparison:
    """Score ``new`` and ``installed`` (LoadedModels; ``installed`` may be None) on ``captures``.

    ``captures``: :class:`core.dataset.folders.DatasetCapture` held out of the new model's
    training. Patches are extracted once per patch size. An installed model that
    cannot classify these captures (other profile, bands or classes) gets a
    ``problem`` instead of metrics. ValueError when no capture is given.
    """
    from core.training.trainer import patch_set_from_captures

    if not captures:
        raise ValueError("hold out at least one labelled capture to compare models fairly")
    cache: dict[tuple, tuple] = {}

    def score(model) -> ModelScore:
        key = (model.info.model_kind, model.info.patch_size, tuple(model.info.class_ids))
        try:
            for capture in captures:  # a patch model cannot score spectra that have no place in an image
                if getattr(capture, "kind", "raw") == "spectra" and not capture.meta.get("positions"):
                    check_runs_on(model.info, has_image=False, what=capture.capture_id, path=model.path)
            if key not in cache:  # a spectral model takes spectra, a Conv2DNet its patch size
                cache[key] = patch_set_from_captures(captures, max(key[1], 3), class_ids=key[2], model_kind=key[0])
            data, profile_id = cache[key]
            if profile_id != model.info.profile_id:
                raise ModelFileError(model.path, f"model is for camera profile {model.info.profile_id!r}, "
                                                 f"the captures use {profile_id!r}")
            return ModelScore(model.info.label, evaluate_on_patch_set(model, data))
        except ModelFileError as exc:
            return ModelScore(model.info.label, None, exc.problem)

    new_score = score(new)
    if new_score.metrics is None:
        raise ModelFileError(new.path, f"the new model cannot classify the held-out captures: {new_score.problem}")
    installed_score = None if installed is None else score(installed)
    rows = metric_rows(None if installed_score is None else installed_score.metrics, new_score.metrics)
    line = verdict(rows)
    if installed_score is not None and installed_score.metrics is None:
        line = f"The installed model cannot classify these captures ({installed_score.problem}). " + verdict(
            metric_rows(None, new_score.metrics))
    ids = tuple(c.capture_id for c in captures)
    return Comparison(installed_score, new_score, ids, int(new_score.metrics["n"]), rows, line)


def install_problems(new_info, installed_info=None, *, captures_profile: str | None = None) -> list[str]:
    """Plain sentences on what installing ``new_info`` (a ModelInfo) changes for classification.

    Compared with the installed model (bands, camera profile, classes) and with the
    profile of the captures it was checked on. Empty when nothing changes.
    """
    problems = []
    if captures_profile is not None and new_info.profile_id != captures_profile:
        problems.append(f"The new model is for camera profile '{new_info.profile_id}', but these captures use "
                        f"'{captures_profile}'.")
    if installed_info is not None:
        if new_info.n_bands != installed_info.n_bands:
            problems.append(f"The new model reads {new_info.n_bands} bands; the installed one reads "
                            f"{installed_info.n_bands}: captures the installed model classifies will be refused.")
        if new_info.profile_id != installed_info.profile_id:
            problems.append(f"The new model is for camera profile '{new_info.profile_id}'; the installed one is for "
                            f"'{installed_info.profile_id}': captures from that camera will be refused.")
        if tuple(new_info.class_ids) != tuple(installed_info.class_ids):
            problems.append(f"The new model has classes {list(new_info.class_names)}; the installed one has "
                            f"{list(installed_info.class_names)}.")
    return problems


def confusion(score: ModelScore | None) -> np.ndarray | None:
    """The confusion matrix ``int64 (C, C)`` (rows true, columns predicted) of a score, if any."""
    if score is None or score.metrics is None:
        return None
    return np.asarray(score.metrics["confusion"], dtype=np.int64)
