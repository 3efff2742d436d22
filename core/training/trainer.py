"""Training Conv2DNet as the thesis: Adam, cross-entropy, stratified batches, no-cv or double-cv.

One code path for the CLI, the GUI and the cloud job: :func:`train` reports
:class:`TrainingProgress` to ``progress`` after every epoch (of every fold model)
and polls ``should_stop()`` before every batch, raising
:class:`core.errors.TrainingCancelled` as soon as it returns True.

Samples are the labelled, valid pixels of the training captures (see
:mod:`core.model.patches`). Cross-validation modes:

* ``"none"`` (no-cv): one model trained on every sample.
* ``"double"`` (double-cv, the thesis's nested 5 x 5): the samples (labelled
  pixels, pooled over all training captures) are split into K outer folds,
  stratified by class (:func:`core.training.folds.double_cv_plan`). For outer fold k the other K-1
  folds are split again into K inner folds, stratified by class; inner model
  (k, j) trains on the outer-training samples minus inner fold j and is validated
  on inner fold j. The inner winner of outer fold k is its model with the best
  validation OACC; it is tested on outer fold k. The returned model is the
  winner with the best test OACC. K*K models in all, trained together in
  lockstep (:mod:`core.training.stacked_models` over :mod:`core.model.stacked_net`) — each
  exactly as if trained alone.
  Note: folds split pixels, not patients, as the thesis did; pixels of one
  capture are correlated, so these OACCs are optimistic. Use
  :mod:`core.training.evaluation` (leave-one-patient-out) for an honest estimate.

Determinism: fold splits, batch plans and initial weights all derive from
``config.seed``; every operation used is deterministic on the CPU, so two runs
with one seed give bit-identical weights.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from core.classes import CLASS_IDS, class_table
from core.cpu import usable_cores
from core.training.calibration import fit_temperature, patch_logits
from core.training.double_cv import FoldRecord, outer_winners, plan_id, select_double_cv
from core.errors import DatasetError, TrainingCancelled
from core.training.folds import DoubleCVPlan, double_cv_plan, stratified_batch_plan
from core.training.metrics import classification_metrics
from core.model.network import Conv2DNet
from core.model.patches import PatchSet, build_patch_set
from core.training.stacked_models import ModelGroups, deterministic, torch_threads
from core.training.config import CV_MODES, TrainingConfig  # noqa: F401  (re-exported: the training API)

PROGRESS_VAL_SAMPLES = 2048  # per model: the per-epoch val_oacc shown in progress is an estimate


@dataclass(frozen=True)
class TrainingProgress:
    """One epoch of one model. ``fold`` is None for no-cv, else ``outer * folds + inner``."""

    stage: str  # "no-cv" or "double-cv"
    fold: int | None
    epoch: int  # 1-based
    epochs: int
    loss: float  # mean training cross-entropy of the epoch
    val_oacc: float | None  # validation OACC estimate (double-cv), None for no-cv
    fraction: float  # of the whole training, 0..1


@dataclass
class TrainingResult:
    """A trained model with its metrics, per-epoch history and timings."""

    net: Conv2DNet
    metrics: dict
    history: list[dict]
    timings_s: dict[str, float]
    config: TrainingConfig = field(default_factory=TrainingConfig)
    class_ids: tuple[int, ...] = CLASS_IDS
    class_names: tuple[str, ...] = ()
    training_ids: tuple[str, ...] = ()
    profile_id: str | None = None
    n_bands: int = 25
    n_samples: int = 0
    # Temperature scaling fitted on the chosen model's validation fold (double-cv; None for no-cv),
    # and the outer-fold winners kept as the ensemble with their own temperatures (core.model.ensemble).
    temperature: float | None = None
    members: tuple = ()
    member_temperatures: tuple[float, ...] = ()


ProgressFn = Callable[[TrainingProgress], None]
StopFn = Callable[[], bool]


def check_stop(should_stop: StopFn | None) -> None:
    """TrainingCancelled when ``should_stop()`` says so (the one cancel point between stages)."""
    if should_stop is not None and should_stop():
        raise TrainingCancelled("training cancelled")


def _train_models(
    patches: torch.Tensor,
    onehot: torch.Tensor,
    targets: np.ndarray,
    train_rows: list[np.ndarray],
    val_rows: list[np.ndarray] | None,
    config: TrainingConfig,
    *,
    n_classes: int,
    stage: str,
    progress: ProgressFn | None,
    should_stop: StopFn | None,
    history: list[dict],
    workers: int,
    model_ids: list[int] | None = None,
) -> ModelGroups:
    """Train ``len(train_rows)`` models, model m on samples ``train_rows[m]``, validated on ``val_rows[m]``.

    ``model_ids``: which models of the whole plan these are (default 0..M-1). Model i's
    initial weights and batch stream depend only on ``(config.seed, i)``, so a model
    trained alone (a cluster trial) starts and steps as it does among all of them.
    """
    m_models, b = len(train_rows), config.batch_size
    ids = list(range(m_models)) if model_ids is None else list(model_ids)
    if len(ids) != m_models:
        raise ValueError(f"{len(ids)} model ids for {m_models} models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # initial weights drawn in model order from one stream
        all_nets = [Conv2DNet(patches.shape[1], n_classes, config.patch_size) for _ in range(max(ids) + 1)]
    nets = [all_nets[i] for i in ids]
    models = ModelGroups(nets, config.lr, workers)
    # every model has its own random stream, so results do not depend on how models are grouped
    rngs = [np.random.default_rng([config.seed, 1, i]) for i in ids]
    probe = None
    if val_rows is not None:  # a fixed subsample of each validation fold for the per-epoch estimate
        probe = [np.sort(rngs[m].permutation(v)[:PROGRESS_VAL_SAMPLES]) for m, v in enumerate(val_rows)]
    try:
        inputs = models.training_inputs(patches)
        for epoch in range(config.epochs):
            plans = [train_rows[m][stratified_batch_plan(targets[train_rows[m]], b, rngs[m])] for m in range(m_models)]
            mean_loss = models.train_epoch(inputs, onehot, plans, should_stop)
            val = None
            if probe is not None:
                pred = models.predict_rows(patches, probe)
                val = [float((p == targets[r]).mean()) if r.size else None for p, r in zip(pred, probe)]
            for m in range(m_models):
                record = TrainingProgress(
                    stage=stage,
                    fold=None if val_rows is None else ids[m],
                    epoch=epoch + 1,
                    epochs=config.epochs,
                    loss=float(mean_loss[m]),
                    val_oacc=None if val is None else val[m],
                    fraction=(epoch + 1) / config.epochs,
                )
                history.append({"fold": record.fold, "epoch": record.epoch, "loss": record.loss,
                                "val_oacc": record.val_oacc})
                if progress is not None:
                    progress(record)
    except BaseException:
        models.close()
        raise
    return models


def default_workers() -> int:
    """Worker threads for double-cv: the CPU cores this process may use, at most 2 (measured best here)."""
    return max(1, min(2, usable_cores()))


def train_patch_set(
    data: PatchSet,
    config: TrainingConfig = TrainingConfig(),
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    class_names: tuple[str, ...] | None = None,
    workers: int | None = None,
) -> TrainingResult:
    """Train on extracted patches (see module docstring for the cross-validation modes).

    ``workers``: threads training fold models side by side (double-cv; default: CPU
    cores, at most 2). ``should_stop`` may then be called from a worker thread.
    """
    start = time.perf_counter()
    n, n_classes = len(data), len(data.class_ids)
    if data.patches.shape[-1] != config.patch_size:
        raise ValueError(f"patches are {data.patches.shape[-1]}x{data.patches.shape[-1]}, "
                         f"config.patch_size is {config.patch_size}")
    if n == 0:
        raise ValueError("no labelled pixels to train on")
    if class_names is None:
        class_names = class_names_of(data.class_ids)
    patches = torch.from_numpy(np.ascontiguousarray(data.patches, dtype=np.float32))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(data.targets), n_classes).float()
    targets = data.targets
    history: list[dict] = []
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    with deterministic(), torch_threads(1):
        if config.cross_validation == "none":
            models = _train_models(patches, onehot, targets, [np.arange(n)], None, config, n_classes=n_classes,
                                   stage="no-cv", progress=progress, should_stop=should_stop, history=history,
                                   workers=1)
            trained = time.perf_counter()
            pred = models.predict_rows(patches, [np.arange(n)])[0]
            models.close()
            metrics = {"mode": "no-cv",
                       "train": classification_metrics(targets, pred, data.class_ids, class_names)}
            final = models.to_net(0)
            kept = (None, (), ())
        else:
            final, metrics, trained, kept = _double_cv(patches, onehot, targets, config, n_classes, data.class_ids,
                                                       class_names, progress, should_stop, history, workers)
    end = time.perf_counter()
    timings = {"train": trained - start, "select": end - trained, "total": end - start,
               "per_epoch": (trained - start) / config.epochs}
    return TrainingResult(final, metrics, history, timings, config, tuple(data.class_ids), tuple(class_names),
                          tuple(data.capture_ids), None, int(data.patches.shape[1]), n, *kept)


def _double_cv(patches, onehot, targets, config, n_classes, class_ids, class_names, progress, should_stop,
               history, workers):
    plan = double_cv_plan(targets, config.folds, config.seed)
    models = _train_models(patches, onehot, targets, list(plan.train_rows), list(plan.val_rows), config,
                           n_classes=n_classes, stage="double-cv", progress=progress, should_stop=should_stop,
                           history=history, workers=workers)
    trained = time.perf_counter()
    records = _fold_records(models, patches, targets, plan, list(range(plan.n_models)), class_ids, class_names,
                            plan_id(targets, config.to_dict()))
    models.close()
    chosen, metrics = select_double_cv(records, config.folds)
    # Keep every outer winner, each calibrated on its own validation fold (never on a test fold).
    winners = outer_winners(metrics)
    members = tuple(models.to_net(i) for i in winners)
    temperatures = tuple(fit_temperature(patch_logits(net, data_rows(patches, plan.val_rows[i])),
                                         targets[plan.val_rows[i]]) for net, i in zip(members, winners))
    metrics["calibration"] = {"temperatures": list(temperatures), "fitted_on": "each outer winner's validation fold"}
    return (models.to_net(chosen), metrics, trained,
            (temperatures[winners.index(chosen)], members, temperatures))


def data_rows(patches: torch.Tensor, rows: np.ndarray) -> np.ndarray:
    """Patches ``float32 (len(rows), B, p, p)`` of the given sample rows, as numpy."""
    return patches[torch.from_numpy(np.asarray(rows, dtype=np.int64))].numpy()


def _fold_records(models: ModelGroups, patches, targets, plan: DoubleCVPlan, ids: list[int], class_ids,
                  class_names, run: str) -> list[FoldRecord]:
    """Validation OACC and outer-fold test metrics of trained fold models ``ids`` of ``plan``."""
    val_pred = models.predict_rows(patches, [plan.val_rows[i] for i in ids])
    test_pred = models.predict_rows(patches, [plan.test_rows(i) for i in ids])
    records = []
    for m, i in enumerate(ids):
        val_oacc = float((val_pred[m] == targets[plan.val_rows[i]]).mean())
        test = classification_metrics(targets[plan.test_rows(i)], test_pred[m], class_ids, class_names)
        records.append(FoldRecord(i, i // plan.folds, i % plan.folds, val_oacc, test, run))
    return records


def train_fold_model(
    data: PatchSet,
    config: TrainingConfig,
    model: int,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    class_names: tuple[str, ...] | None = None,
) -> tuple[Conv2DNet, FoldRecord]:
    """Train fold model ``model`` (``outer * K + inner``) of the double-cv plan alone: one cluster trial.

    The same plan, initial weights and batches as inside :func:`train_patch_set`, so
    :func:`core.training.double_cv.select_double_cv` over all K*K records picks the same model.
    """
    k = config.folds
    if not 0 <= model < k * k:
        raise ValueError(f"fold model must be in 0..{k * k - 1}, got {model}")
    if data.patches.shape[-1] != config.patch_size:
        raise ValueError(f"patches are {data.patches.shape[-1]}x{data.patches.shape[-1]}, "
                         f"config.patch_size is {config.patch_size}")
    class_names = class_names_of(data.class_ids) if class_names is None else class_names
    plan = double_cv_plan(data.targets, k, config.seed)
    patches = torch.from_numpy(np.ascontiguousarray(data.patches, dtype=np.float32))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(data.targets), len(data.class_ids)).float()
    with deterministic(), torch_threads(1):
        models = _train_models(patches, onehot, data.targets, [plan.train_rows[model]], [plan.val_rows[model]],
                               config, n_classes=len(data.class_ids), stage="double-cv", progress=progress,
                               should_stop=should_stop, history=[], workers=1, model_ids=[model])
        [record] = _fold_records(models, patches, data.targets, plan, [model], data.class_ids, class_names,
                                 plan_id(data.targets, config.to_dict()))
        models.close()
        net, val = models.to_net(0), plan.val_rows[model]
        record = replace(record, temperature=fit_temperature(patch_logits(net, data_rows(patches, val)),
                                                             data.targets[val]))
    return net, record


def class_names_of(class_ids: tuple[int, ...]) -> tuple[str, ...]:
    table = class_table()
    return tuple(table.by_id(i).name if i in table.ids else str(i) for i in class_ids)


# -- from dataset captures -------------------------------------------------------------------------
def load_labelled_cube(capture) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(capture_id, cube (H, W, B), labels (H, W), valid (H, W), profile_id)`` of a dataset capture.

    ``capture`` is a :class:`core.dataset.folders.DatasetCapture` (anything with
    ``capture_id``, ``labels_path``, ``load_capture()`` and ``load_labels()``).
    """
    from core.spectral.chain import preprocess_capture

    # DatasetCapture knows its profile (the synthetic small profile is not a built-in one)
    profile = capture.profile() if callable(getattr(capture, "profile", None)) else None
    cube = preprocess_capture(capture.load_capture(), profile)
    labels = capture.load_labels()
    if labels.shape != cube.valid.shape:
        raise DatasetError(getattr(capture, "labels_path", capture.capture_id),
                           f"labels are {labels.shape[0]}x{labels.shape[1]}, the cube is "
                           f"{cube.valid.shape[0]}x{cube.valid.shape[1]}")
    return capture.capture_id, cube.data, labels, cube.valid, cube.profile_id


def patch_set_from_captures(captures, patch_size: int = 7, *, class_ids: tuple[int, ...] = CLASS_IDS):
    """``(PatchSet, profile_id)`` of dataset captures; DatasetError when there is nothing labelled."""
    if not captures:
        raise DatasetError(None, "no captures to train on")
    items, profiles = [], set()
    for capture in captures:
        capture_id, data, labels, valid, profile_id = load_labelled_cube(capture)
        items.append((capture_id, data, labels, valid))
        profiles.add(profile_id)
    if len(profiles) > 1:
        raise DatasetError(None, f"captures use different camera profiles: {sorted(profiles)}")
    data = build_patch_set(items, patch_size, class_ids=class_ids)
    if len(data) == 0:
        folder = getattr(captures[0], "folder", None)
        root = None if folder is None else folder.parent
        raise DatasetError(root, "no labelled pixels in the training captures")
    return data, profiles.pop()


def train(
    captures,
    config: TrainingConfig = TrainingConfig(),
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    workers: int | None = None,
) -> TrainingResult:
    """Train on dataset captures (:class:`core.dataset.folders.DatasetCapture`), all labelled pixels of each.

    ``workers``: threads training double-cv fold models side by side (see :func:`train_patch_set`).
    """
    start = time.perf_counter()
    data, profile_id = patch_set_from_captures(captures, config.patch_size)
    prepared = time.perf_counter()
    check_stop(should_stop)
    result = train_patch_set(data, config, progress=progress, should_stop=should_stop, workers=workers)
    result.profile_id = profile_id
    result.timings_s = {"prepare": prepared - start, **result.timings_s, "total": time.perf_counter() - start}
    return result


def predict_patches(net: Conv2DNet, patches: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Class index ``int64 (N,)`` of patches ``float32 (N, B, p, p)`` (argmax of the logits)."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, patches.shape[0], chunk):
            out.append(net(torch.from_numpy(np.ascontiguousarray(patches[start : start + chunk]))).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
