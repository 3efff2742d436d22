"""Training Conv2DNet as the thesis (Adam, cross-entropy, stratified batches, no-cv or double-cv), and SpectralNet.

``config.model_kind`` picks the network: ``"conv2dnet"`` (patches, the default) or
``"spectral"`` (per-pixel spectra, :mod:`core.training.spectral_trainer`); both run
through the same no-cv / double-cv code below. ``config.balance`` adds class-balanced
batches (``"sampling"``) or, for the spectral model, a weighted loss (``"loss"``).

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
  Folds split pixels, as the thesis did, unless the samples' patients are given
  (``groups``) and there are enough of them (:func:`core.training.folds.grouped_plan_possible`):
  then folds split patients, so the model chosen is validated across patients (pixels of
  one capture are correlated; pixel folds give optimistic OACCs). ``metrics["folds_by"]``
  says which. :mod:`core.training.evaluation` (leave-one-patient-out) is the honest estimate.

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
from core.training.folds import DoubleCVPlan, balanced_batch_plan, double_cv_plan, stratified_batch_plan
from core.training.metrics import classification_metrics
from core.model.network import Conv2DNet
from core.model.patches import PatchSet
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

    net: Conv2DNet  # or a SpectralNet (config.model_kind == "spectral")
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
    epoch_hook: Callable | None = None,
) -> ModelGroups:
    """Train ``len(train_rows)`` models, model m on samples ``train_rows[m]``, validated on ``val_rows[m]``.

    ``model_ids``: which models of the whole plan these are (default 0..M-1). Model i's
    initial weights and batch stream depend only on ``(config.seed, i)``, so a model
    trained alone (a cluster trial) starts and steps as it does among all of them.
    ``epoch_hook(m, epoch, net)`` sees model m's network after each epoch (1-based).
    """
    if config.model_kind == "spectral":
        from core.training.spectral_trainer import train_spectral_models

        return train_spectral_models(patches, targets, train_rows, val_rows, config, n_classes=n_classes, stage=stage,
                                     progress=progress, should_stop=should_stop, history=history, model_ids=model_ids,
                                     epoch_hook=epoch_hook)
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
    plan_fn = balanced_batch_plan if config.balance == "sampling" else stratified_batch_plan
    probe = None
    if val_rows is not None:  # a fixed subsample of each validation fold for the per-epoch estimate
        probe = [np.sort(rngs[m].permutation(v)[:PROGRESS_VAL_SAMPLES]) for m, v in enumerate(val_rows)]
    try:
        inputs = models.training_inputs(patches)
        for epoch in range(config.epochs):
            plans = [train_rows[m][plan_fn(targets[train_rows[m]], b, rngs[m])] for m in range(m_models)]
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
                if epoch_hook is not None:
                    epoch_hook(m, epoch + 1, models.to_net(m))
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
    groups: np.ndarray | None = None,
) -> TrainingResult:
    """Train on extracted patches (see module docstring for the cross-validation modes).

    ``workers``: threads training fold models side by side (double-cv; default: CPU
    cores, at most 2). ``should_stop`` may then be called from a worker thread.
    ``groups``: patient index ``int64 (N,)`` of each sample, for patient-grouped double-cv folds.
    """
    start = time.perf_counter()
    n, n_classes = len(data), len(data.class_ids)
    _check_inputs(data, config)
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
                                                       class_names, progress, should_stop, history, workers, groups)
    end = time.perf_counter()
    timings = {"train": trained - start, "select": end - trained, "total": end - start,
               "per_epoch": (trained - start) / config.epochs}
    return TrainingResult(final, metrics, history, timings, config, tuple(data.class_ids), tuple(class_names),
                          tuple(data.capture_ids), None, int(data.patches.shape[1]), n, *kept)


def _check_inputs(data: PatchSet, config: TrainingConfig) -> None:
    """Samples shaped for the model kind: p x p patches for Conv2DNet, 1 x 1 (spectra) for SpectralNet."""
    side = 1 if config.model_kind == "spectral" else config.patch_size
    if data.patches.shape[-1] != side:
        raise ValueError(f"samples are {data.patches.shape[-1]}x{data.patches.shape[-1]} patches, the "
                         f"{config.model_kind} model takes {side}x{side}")


def _double_cv(patches, onehot, targets, config, n_classes, class_ids, class_names, progress, should_stop,
               history, workers, groups=None):
    plan = double_cv_plan(targets, config.folds, config.seed, groups)
    models = _train_models(patches, onehot, targets, list(plan.train_rows), list(plan.val_rows), config,
                           n_classes=n_classes, stage="double-cv", progress=progress, should_stop=should_stop,
                           history=history, workers=workers)
    trained = time.perf_counter()
    records = _fold_records(models, patches, targets, plan, list(range(plan.n_models)), class_ids, class_names,
                            plan_id(targets, config.to_dict()))
    models.close()
    chosen, metrics = select_double_cv(records, config.folds)
    metrics["folds_by"] = "patient" if plan.grouped else "pixel"
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
    groups: np.ndarray | None = None,
) -> tuple[Conv2DNet, FoldRecord]:
    """Train fold model ``model`` (``outer * K + inner``) of the double-cv plan alone: one cluster trial.

    The same plan, initial weights and batches as inside :func:`train_patch_set`, so
    :func:`core.training.double_cv.select_double_cv` over all K*K records picks the same model.
    """
    k = config.folds
    if not 0 <= model < k * k:
        raise ValueError(f"fold model must be in 0..{k * k - 1}, got {model}")
    _check_inputs(data, config)
    class_names = class_names_of(data.class_ids) if class_names is None else class_names
    plan = double_cv_plan(data.targets, k, config.seed, groups)
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


def train_on_rows(data: PatchSet, config: TrainingConfig, train_rows: list[np.ndarray], *,
                  epoch_hook: Callable | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> list:
    """One model per entry of ``train_rows`` (no-cv each), trained together; their networks (eval mode).

    ``epoch_hook(m, epoch, net)`` scores checkpoints (leave-one-patient-out's inner validation).
    """
    _check_inputs(data, config)
    patches = torch.from_numpy(np.ascontiguousarray(data.patches, dtype=np.float32))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(data.targets), len(data.class_ids)).float()
    with deterministic(), torch_threads(1):
        models = _train_models(patches, onehot, data.targets, list(train_rows), None, config,
                               n_classes=len(data.class_ids), stage="no-cv", progress=progress,
                               should_stop=should_stop, history=[], workers=default_workers(), epoch_hook=epoch_hook)
        nets = [models.to_net(m) for m in range(len(train_rows))]
        models.close()
    return nets


def class_names_of(class_ids: tuple[int, ...]) -> tuple[str, ...]:
    table = class_table()
    return tuple(table.by_id(i).name if i in table.ids else str(i) for i in class_ids)


# -- from dataset captures -------------------------------------------------------------------------
def load_labelled_cube(capture) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(capture_id, cube (H, W, B), labels (H, W), valid (H, W), profile_id)`` of a raw or cube capture."""
    from core.training.samples import load_capture_data

    item = load_capture_data(capture)
    if item.cube is None:
        raise DatasetError(getattr(capture, "folder", None), "holds labelled spectra only, no cube")
    return item.capture_id, item.cube, item.labels, item.valid, item.profile_id


def patch_set_from_captures(captures, patch_size: int = 7, *, class_ids: tuple[int, ...] = CLASS_IDS,
                            model_kind: str = "conv2dnet"):
    """``(PatchSet, profile_id)`` of dataset captures of any kind for ``model_kind`` (:mod:`core.training.samples`)."""
    from core.training.samples import samples_from_captures

    return samples_from_captures(captures, model_kind, patch_size, class_ids=class_ids)


def sample_groups(captures, data: PatchSet) -> np.ndarray:
    """Patient index ``int64 (N,)`` of each sample of ``data`` (built from ``captures`` in order)."""
    from core.training.samples import patients_of

    return patients_of(captures)[data.capture_index]


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
    data, profile_id = patch_set_from_captures(captures, config.patch_size, model_kind=config.model_kind)
    prepared = time.perf_counter()
    check_stop(should_stop)
    result = train_patch_set(data, config, progress=progress, should_stop=should_stop, workers=workers,
                             groups=sample_groups(captures, data))
    result.profile_id = profile_id
    result.timings_s = {"prepare": prepared - start, **result.timings_s, "total": time.perf_counter() - start}
    return result


def predict_patches(net: Conv2DNet, patches: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Class index ``int64 (N,)`` of patches ``float32 (N, B, p, p)`` (argmax of the logits; SpectralNet: p = 1)."""
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, patches.shape[0], chunk):
            out.append(net(torch.from_numpy(np.ascontiguousarray(patches[start : start + chunk]))).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
