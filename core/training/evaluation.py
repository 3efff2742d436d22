"""Leave-one-patient-out evaluation: for each patient, train on all others and test on theirs.

Captures are grouped by :attr:`core.dataset.folders.DatasetCapture.patient` (meta.json's
``patient``, else the ID before ``C``: ID0065C01 -> ID0065), so two captures of one
patient are never split between training and test. Samples are built once for the
model kind (:mod:`core.training.samples`: patches for Conv2DNet, spectra for SpectralNet).

Choices made inside training are validated across patients, never on the test patient:
when a fold's training part holds at least 2 patients, the number of epochs is chosen by
an inner leave-one-patient-out over those patients (mean inner macro F1 at checkpoints
every ``epochs / 10`` epochs); the fold's model is the one trained on all its training
patients, stopped at the chosen epoch. The inner models and the final one train together
in lockstep (:func:`core.training.trainer.train_on_rows`), so this costs one stacked run.

``seeds`` repeats every fold with seeds ``config.seed + i``; baselines (majority class,
and any fit/predict function the caller passes, e.g. the CLI's linear SVM) run on the
same folds and the same pixels. :func:`evaluation_json` builds the report (see
:mod:`core.training.evaluation_report`).

Each fold also reports the expected calibration error of its held-out pixels (``"calibration"``,
:func:`core.training.calibration.calibration_report`, first seed; these per-fold models are
uncalibrated, T = 1) and ``mean.ece`` averages it over folds.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from core.errors import DatasetError
from core.training.evaluation_report import evaluation_json, format_evaluation_table, score_fold  # noqa: F401
from core.training.metrics import confusion_matrix, per_class_scores
from core.training.trainer import (
    TrainingConfig,
    check_stop,
    class_names_of,
    patch_set_from_captures,
    predict_patches,
    train_on_rows,
)
from core.training.calibration import calibration_report, patch_logits

CHECKPOINTS = 10  # inner validation scores the epoch count at this many evenly spaced epochs
# fit_predict(train_spectra (n, B), train_targets (n,), test_spectra (m, B), seed) -> predicted targets (m,)
Baseline = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def patient_groups(captures) -> dict[str, list[int]]:
    """Patient id -> indices of its captures, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, capture in enumerate(captures):
        groups.setdefault(str(getattr(capture, "patient", capture.capture_id)), []).append(index)
    return groups


def checkpoints(epochs: int) -> list[int]:
    """The epochs at which inner validation scores a model: every ``epochs // 10``, and the last."""
    step = max(1, epochs // CHECKPOINTS)
    return sorted(set(range(step, epochs + 1, step)) | {epochs})


def train_fold(data, sample_patients: np.ndarray, train_idx: np.ndarray, config: TrainingConfig, *,
               inner: bool = True, progress=None, should_stop=None):
    """``(net, chosen)``: the model of one outer fold, its epoch count chosen across its training patients.

    ``sample_patients``: patient index of every sample of ``data``. ``chosen``:
    ``{"epochs", "inner_patients", "inner_macro_f1": {epoch: mean}, "inner_best"}``
    (``inner_patients`` empty when the fold has fewer than 2 training patients or
    ``inner`` is False: then ``config.epochs`` is used as given).
    """
    patients = np.unique(sample_patients[train_idx])
    if not inner or patients.size < 2:
        [net] = train_on_rows(data, config, [train_idx], progress=progress, should_stop=should_stop)
        return net, {"epochs": config.epochs, "inner_patients": [], "inner_macro_f1": {}, "inner_best": None}
    inner_rows = [(train_idx[sample_patients[train_idx] != p], train_idx[sample_patients[train_idx] == p])
                  for p in patients]
    marks = checkpoints(config.epochs)
    scores = np.full((patients.size, len(marks)), np.nan)
    snapshots: dict[int, dict] = {}
    names = [str(i) for i in data.class_ids]

    def hook(m: int, epoch: int, net) -> None:
        if epoch not in marks:
            return
        if m == patients.size:  # the fold's own model: keep its weights at every checkpoint
            snapshots[epoch] = copy.deepcopy(net.state_dict())
            return
        val = inner_rows[m][1]
        matrix = confusion_matrix(data.targets[val], predict_patches(net, data.patches[val]), len(names))
        scores[m, marks.index(epoch)] = per_class_scores(matrix, names)[1]

    nets = train_on_rows(data, config, [r for r, _ in inner_rows] + [train_idx], epoch_hook=hook,
                         progress=progress, should_stop=should_stop)
    mean = np.nanmean(scores, axis=0)
    best = int(np.nanargmax(mean))  # first best: the fewest epochs among equals
    net = nets[-1]
    net.load_state_dict(snapshots[marks[best]])
    return net.eval(), {"epochs": marks[best], "inner_patients": [int(p) for p in patients],
                        "inner_macro_f1": {str(e): round(float(v), 4) for e, v in zip(marks, mean)},
                        "inner_best": float(mean[best])}


def majority_baseline(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int) -> np.ndarray:
    """Always the training pixels' most common class."""
    return np.full(len(test_x), int(np.bincount(train_y).argmax()), dtype=np.int64)


def centre_spectra(patches: np.ndarray) -> np.ndarray:
    """The centre pixel's spectrum ``(N, B)`` of samples ``(N, B, p, p)``."""
    r = patches.shape[-1] // 2
    return np.ascontiguousarray(patches[:, :, r, r])


def leave_one_patient_out(
    captures,
    config: TrainingConfig = TrainingConfig(),
    *,
    seeds: int = 1,
    inner: bool = True,
    baselines: dict[str, Baseline] | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_fold_fields: dict[str, dict] | None = None,
) -> dict:
    """The JSON-ready report (:func:`evaluation_json`); ``progress(patient, TrainingProgress)`` every epoch.

    ``baselines``: name -> fit/predict function run on the centre spectra of the same
    folds (``majority`` is always added when any is given).
    """
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    start = time.perf_counter()
    groups = patient_groups(captures)
    if len(groups) < 2:
        raise DatasetError(None, f"leave-one-patient-out needs captures of at least 2 patients, got {len(groups)}")
    data, profile_id = patch_set_from_captures(captures, config.patch_size, model_kind=config.model_kind)
    patient_index = np.zeros(len(captures), np.int64)
    for index, members in enumerate(groups.values()):
        patient_index[members] = index
    sample_patients = patient_index[data.capture_index]
    names = class_names_of(data.class_ids)
    prepared = time.perf_counter()
    folds, baseline_folds = [], {}
    if baselines:
        baselines = {"majority": majority_baseline, **baselines}
    for patient, members in groups.items():
        check_stop(should_stop)
        held_out = np.isin(data.capture_index, members)
        ids = [captures[i].capture_id for i in members]
        if not held_out.any():
            folds.append({"patient": patient, "capture_ids": ids, "skipped": "no labelled pixels"})
            continue
        if held_out.all():
            raise DatasetError(None, f"only patient {patient} has labelled pixels")
        train_idx, test_idx = np.flatnonzero(~held_out), np.flatnonzero(held_out)
        report = None if progress is None else (lambda p, patient=patient: progress(patient, p))
        runs, calibrations, t0 = [], [], time.perf_counter()
        for s in range(seeds):
            run_config = replace(config, seed=config.seed + s)
            net, chosen = train_fold(data, sample_patients, train_idx, run_config, inner=inner,
                                     progress=report, should_stop=should_stop)
            logits = patch_logits(net, data.patches[test_idx])
            pred = logits.argmax(axis=1)
            calibrations.append(calibration_report(logits, data.targets[test_idx], None))
            runs.append((run_config.seed, confusion_matrix(data.targets[test_idx], pred, len(names)), chosen))
        fold = score_fold(patient, ids, runs, names, train_s=time.perf_counter() - t0)
        fold["calibration"] = {**calibrations[0], "ece_over_seeds": [c["ece"] for c in calibrations]}
        folds.append(fold)
        for name, fit_predict in (baselines or {}).items():
            pred = fit_predict(centre_spectra(data.patches[train_idx]), data.targets[train_idx],
                               centre_spectra(data.patches[test_idx]), config.seed)
            matrix = confusion_matrix(data.targets[test_idx], pred, len(names))
            baseline_folds.setdefault(name, []).append(score_fold(patient, ids, [(config.seed, matrix, None)], names))
    model = {
        "kind": config.model_kind,
        "architecture": {"conv2dnet": "Conv2DNet", "spectral": "SpectralNet"}[config.model_kind],
        "inputs": "patches" if config.model_kind == "conv2dnet" else "spectra",
        "class_ids": list(data.class_ids),
        "class_names": list(names),
        "profile_id": profile_id,
        "config": config.to_dict(),
        "seeds": [config.seed + s for s in range(seeds)],
        "epoch_selection": "inner leave-one-patient-out over each fold's training patients (mean macro F1)"
        if inner else "none (config.epochs)",
        "n_samples": len(data),
    }
    result = evaluation_json(model, folds, baseline_folds, extra_fold_fields=extra_fold_fields)
    eces = [f["calibration"]["ece"] for f in result["folds"] if "calibration" in f]
    result["mean"]["ece"] = float(np.mean(eces)) if eces else None
    # inside "model": the report's top level is exactly {"model", "folds", "mean", "baselines"}
    result["model"]["timings_s"] = {"prepare": prepared - start, "total": time.perf_counter() - start}
    return result
