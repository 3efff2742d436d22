"""A fair comparison of the installed and a newly trained model, and what installing the new one changes.

Fair means: both models classify the same held-out captures (labelled pixels the
new model never trained on) and are scored with the same metrics
(:func:`core.training.metrics.classification_metrics`: OACC, per-class sensitivity and
specificity, confusion matrix). Metrics stored in the model files are never mixed
in: they come from different data (training folds, other captures).

:func:`compare_models` gives a :class:`Comparison`: one :class:`MetricRow` per metric
with plain names ("Tumour tissue: sensitivity"), ranked by what matters in theatre:
tumour sensitivity first, then macro F1, overall accuracy and the rest. The verdict
opens with tumour sensitivity and says whether the new model is recommended; a
model worse on tumour (or one that finds no tumour at all) is never recommended
(``Comparison.tumour_worse``): installing it takes a typed reason the history keeps.
:func:`install_problems` lists, in plain words,
what would stop the new model from classifying the captures the installed one
classifies (bands, camera profile, classes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ModelFileError
from core.model.compatibility import check_runs_on
from core.training.metrics import TUMOUR_ID, classification_metrics

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

    key: str  # "sensitivity:2" (tumour, first), "macro_f1", "oacc", "sensitivity:1", "specificity:5"
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

    @property
    def tumour_worse(self) -> bool:
        """True when the new model must not be recommended on tumour grounds: worse on tumour
        sensitivity (:func:`tumour_worse`) or calling most other tissue tumour
        (:func:`calls_too_much_tumour`). Installing it then takes a typed reason."""
        return tumour_worse(self.rows) or calls_too_much_tumour(self.rows)

    @property
    def recommended(self) -> bool:
        """The verdict recommends installing the new model."""
        return recommended(self.rows)

    def to_dict(self) -> dict:
        return {
            "capture_ids": list(self.capture_ids), "n_pixels": self.n_pixels, "verdict": self.verdict,
            "recommended": self.recommended, "tumour_worse": self.tumour_worse,
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


TUMOUR_KEY = f"sensitivity:{TUMOUR_ID}"
TUMOUR_SPECIFICITY_KEY = f"specificity:{TUMOUR_ID}"
# A model that calls more than half of the other tissue tumour is never recommended, whatever
# its tumour sensitivity (one that calls every pixel tumour scores 100 % there).
MIN_TUMOUR_SPECIFICITY = 0.5


def macro_f1(metrics: dict | None) -> float | None:
    """Mean F1 over the classes that have true or predicted samples (from the confusion matrix)."""
    if metrics is None or "confusion" not in metrics:
        return None
    m = np.asarray(metrics["confusion"], dtype=np.float64)
    tp = np.diag(m)
    denom = m.sum(axis=0) + m.sum(axis=1)  # 2 TP + FP + FN
    present = denom > 0
    if not present.any():
        return None
    return float(np.mean(2 * tp[present] / denom[present]))


def metric_rows(installed: dict | None, new: dict | None) -> tuple[MetricRow, ...]:
    """Tumour sensitivity, macro F1, OACC, then sensitivity and specificity of every other class.

    The order is the ranking: what matters in theatre first. Either dict may be None.
    """
    base = new or installed
    if base is None:
        return ()
    names, ids = base["class_names"], base["class_ids"]

    def value(metrics: dict | None, key: str, i: int | None = None) -> float | None:
        if metrics is None:
            return None
        v = metrics[key] if i is None else metrics[key][i]
        return None if v is None else float(v)

    rows = []
    if TUMOUR_ID in ids:
        i = list(ids).index(TUMOUR_ID)
        rows.append(MetricRow(TUMOUR_KEY, f"{names[i]}: sensitivity", value(installed, "sensitivity", i),
                              value(new, "sensitivity", i)))
    rows.append(MetricRow("macro_f1", "Macro F1 (mean over classes)", macro_f1(installed), macro_f1(new)))
    rows.append(MetricRow("oacc", "Overall accuracy (OACC)", value(installed, "oacc"), value(new, "oacc")))
    for what in ("sensitivity", "specificity"):
        for i, (class_id, name) in enumerate(zip(ids, names)):
            if what == "sensitivity" and class_id == TUMOUR_ID:
                continue
            rows.append(MetricRow(f"{what}:{class_id}", f"{name}: {what}", value(installed, what, i),
                                  value(new, what, i)))
    return tuple(rows)


def _plain(row: MetricRow) -> str:
    if row.key == "oacc":
        return "overall accuracy"
    if row.key == "macro_f1":
        return "macro F1"
    name, what = row.title.split(": ")
    return f"{name.lower()} {what}"


def _row(rows: tuple[MetricRow, ...], key: str) -> MetricRow | None:
    return next((r for r in rows if r.key == key), None)


def tumour_worse(rows: tuple[MetricRow, ...]) -> bool:
    """The new model is worse on tumour: lower tumour sensitivity than the installed one (any drop),
    or no tumour found at all (0 %), or tumour sensitivity unknown (no tumour pixel held out)."""
    row = _row(rows, TUMOUR_KEY)
    if row is None or row.new is None or row.new <= 0.0:
        return True
    return row.installed is not None and row.new < row.installed


def calls_too_much_tumour(rows: tuple[MetricRow, ...]) -> bool:
    """The new model calls more than half of the held-out non-tumour pixels tumour
    (tumour specificity below :data:`MIN_TUMOUR_SPECIFICITY`)."""
    row = _row(rows, TUMOUR_SPECIFICITY_KEY)
    return row is not None and row.new is not None and row.new < MIN_TUMOUR_SPECIFICITY


def recommended(rows: tuple[MetricRow, ...], *, margin_points: float = MARGIN_POINTS) -> bool:
    """Recommend only a model not worse on tumour and not calling most other tissue tumour; then
    one that gains on tumour sensitivity (losing less macro F1 than it gains), or (tumour the
    same) is not worse on macro F1."""
    if tumour_worse(rows) or calls_too_much_tumour(rows):
        return False
    f1 = _row(rows, "macro_f1")
    f1_change = f1.delta_points if f1 is not None else None
    tumour = _row(rows, TUMOUR_KEY)
    tumour_gain = tumour.delta_points if tumour is not None else None
    if tumour_gain is not None and tumour_gain >= margin_points:
        return f1_change is None or f1_change > -tumour_gain
    return not (f1_change is not None and f1_change <= -margin_points)


def _tumour_line(rows: tuple[MetricRow, ...]) -> str:
    row = _row(rows, TUMOUR_KEY)
    if row is None or row.new is None:
        return "Tumour sensitivity unknown (no tumour pixel in the held-out captures)"
    if row.installed is None:
        return f"Tumour sensitivity {100 * row.new:.1f} %"
    return (f"Tumour sensitivity {100 * row.installed:.1f} % → {100 * row.new:.1f} % "
            f"({row.delta_points:+.1f} points)")


def _too_much_tumour(rows: tuple[MetricRow, ...]) -> str:
    row = _row(rows, TUMOUR_SPECIFICITY_KEY)
    return f"it calls most other tissue tumour (tumour specificity {100 * row.new:.1f} %)"


def verdict(rows: tuple[MetricRow, ...], *, margin_points: float = MARGIN_POINTS) -> str:
    """One line, tumour sensitivity first: whether the new model is recommended, and why.

    Then the other metrics that moved by at least ``margin_points``, in ranking order.
    """
    if not rows:
        return "Nothing to compare."
    head = _tumour_line(rows)
    tumour = _row(rows, TUMOUR_KEY)
    compared = any(r.delta_points is not None for r in rows)
    if not compared:
        oacc = _row(rows, "oacc")
        no_base = "No installed model to compare with on these captures"
        detail = f"{head}; overall accuracy {100 * oacc.new:.1f} %" if oacc and oacc.new is not None else head
        decision = ("Not recommended: it finds no tumour" if tumour_worse(rows)
                    else f"Not recommended: {_too_much_tumour(rows)}" if calls_too_much_tumour(rows)
                    else "Recommended with care")
        return f"{decision}. {no_base}; {detail}."
    if tumour_worse(rows):
        why = ("it finds no tumour" if tumour is not None and tumour.new is not None and tumour.new <= 0
               else "tumour sensitivity unknown" if tumour is None or tumour.new is None
               else "worse on tumour sensitivity")
        decision = f"Not recommended: {why}"
    elif calls_too_much_tumour(rows):
        decision = f"Not recommended: {_too_much_tumour(rows)}"
    elif recommended(rows, margin_points=margin_points):
        decision = "Recommended"
    elif tumour is not None and tumour.delta_points is not None and tumour.delta_points >= margin_points:
        decision = "Not recommended: it loses more on macro F1 than it gains on tumour"
    else:
        decision = "Not recommended: same on tumour, worse on macro F1"
    others = [r for r in rows if r.key != TUMOUR_KEY and r.delta_points is not None
              and abs(r.delta_points) >= margin_points][:2 * VERDICT_ITEMS]
    tail = "; ".join(f"{'better' if r.delta_points > 0 else 'worse'} on {_plain(r)} by {abs(r.delta_points):.1f} points"
                     for r in others)
    return f"{decision}. {head}" + (f"; {tail}." if tail else "; the other metrics within "
                                                           f"{margin_points:g} point.")


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
        rows = metric_rows(None, new_score.metrics)
        line = f"The installed model cannot classify these captures ({installed_score.problem}). " + verdict(rows)
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
