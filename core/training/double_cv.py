"""Double cross-validation results: one record per fold model, and the selection of the final model.

The K x K fold models of :func:`core.training.folds.double_cv_plan` may be trained together
in one process (:func:`core.training.trainer.train_patch_set`) or one per machine (an Azure
ML sweep trial each, :func:`core.training.trainer.train_fold_model`); either way each gives
a :class:`FoldRecord` and :func:`select_double_cv` picks the same final model:

* for every outer fold o, its inner winner is the fold model with the best
  validation OACC (first on ties);
* the winner of outer fold o is tested on outer fold o (its test metrics);
* the final model is the outer winner with the best test OACC (first on ties);
* all K outer winners are kept as the model file's ensemble (:func:`outer_winners`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FoldRecord:
    """Fold model ``model = outer * K + inner``: its validation OACC and its metrics on outer fold ``outer``."""

    model: int
    outer: int
    inner: int
    val_oacc: float
    test: dict  # core.training.metrics.classification_metrics on the outer test fold
    plan_id: str = ""  # same for every fold model of one run (samples, folds, seed, hyper-parameters)
    temperature: float | None = None  # fitted on its validation fold (core.training.calibration); None: not fitted

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_file(cls, path: str | Path) -> "FoldRecord":
        data = json.loads(Path(path).read_text())
        temperature = data.get("temperature")
        return cls(int(data["model"]), int(data["outer"]), int(data["inner"]), float(data["val_oacc"]),
                   dict(data["test"]), str(data.get("plan_id", "")),
                   None if temperature is None else float(temperature))


def plan_id(targets: np.ndarray, config: dict) -> str:
    """Fingerprint of one double-cv run: the sample classes (in order) and the hyper-parameters."""
    digest = hashlib.sha256(np.ascontiguousarray(targets, dtype=np.int64).tobytes())
    digest.update(json.dumps(config, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def select_double_cv(records: list[FoldRecord], folds: int) -> tuple[int, dict]:
    """``(chosen model index, metrics)`` from all K*K fold records (any order).

    ``metrics`` is the ``"double-cv"`` dict training stores in the model file:
    ``outer`` (per outer fold: inner validation OACCs, winner, test metrics),
    ``test_oacc_mean``/``test_oacc_std``, ``chosen`` and the chosen model's ``test``.
    ValueError when a fold model is missing or reported twice.
    """
    if len({r.plan_id for r in records}) > 1:
        raise ValueError("fold results come from different runs (samples, folds, seed or hyper-parameters differ): "
                         "give each run its own folder")
    by_model = {r.model: r for r in records}
    expected = set(range(folds * folds))
    if len(by_model) != len(records) or set(by_model) != expected:
        missing = sorted(expected - set(by_model))
        raise ValueError(f"double cross-validation needs one result per fold model 0..{folds * folds - 1}"
                         + (f"; missing {missing}" if missing else "; some are duplicated or out of range"))
    outer = []
    for o in range(folds):
        scores = [by_model[o * folds + j].val_oacc for j in range(folds)]
        winner = int(np.argmax(scores))
        test = by_model[o * folds + winner].test
        outer.append({"outer": o, "inner_val_oacc": scores, "winner_inner": winner,
                      "test_oacc": test["oacc"], "test": test})
    best = int(np.argmax([f["test_oacc"] for f in outer]))
    test_oaccs = [f["test_oacc"] for f in outer]
    metrics = {
        "mode": "double-cv",
        "folds": folds,
        "outer": outer,
        "test_oacc_mean": float(np.mean(test_oaccs)),
        "test_oacc_std": float(np.std(test_oaccs)),
        "chosen": {"outer": best, "inner": outer[best]["winner_inner"]},
        "test": outer[best]["test"],
    }
    return best * folds + outer[best]["winner_inner"], metrics


def outer_winners(metrics: dict) -> list[int]:
    """Fold-model indices (``outer * K + inner``) of every outer fold's winner, in outer order.

    These are the ensemble training keeps (:mod:`core.model.ensemble`): K models, each
    chosen on its own inner validation folds and never on the data of the others' tests.
    ``metrics`` is :func:`select_double_cv`'s.
    """
    folds = metrics["folds"]
    return [o["outer"] * folds + o["winner_inner"] for o in metrics["outer"]]
