"""Train a model file from a dataset folder: the one training entry point.

``neurohsi train`` (app/cli/training_commands.py) and the training job
(remote/training_job.py) both call :func:`train_model_file` (``fold=M`` for one double-cv
fold model, a cluster trial); they differ only in how progress is shown (a bar, a
JSON-lines file, MLflow: callbacks passed in).

``progress.jsonl`` (:class:`ProgressLog`) has one JSON object a line, flushed each:
``{"event": "epoch", "stage", "fold", "epoch", "epochs", "loss", "val_oacc", "fraction"}``
for every epoch of every model, then ``{"event": "done", "metrics": {...}, "model": path}``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core import defaults
from core.errors import DatasetError
from core.training.config import TrainingConfig

ProgressFn = Callable[[object], None]  # gets core.training.trainer.TrainingProgress


def read_training_dataset(path: Path) -> list:
    """The captures of a dataset folder (DatasetError when there is none, or no folder)."""
    from core.dataset.folders import read_dataset

    path = Path(path)
    if not path.is_dir():
        raise DatasetError(path, "dataset folder not found")
    captures = read_dataset(path)
    if not captures:
        raise DatasetError(path, "dataset has no captures")
    return captures


def check_output(output: Path) -> None:
    """ValueError naming ``output`` unless it can become a model file (checked before hours of training)."""
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ValueError(f"{output}: model file must end in .safetensors")
    if not output.parent.is_dir():
        raise ValueError(f"{output}: folder for the model file does not exist")
    if output.exists() and not output.is_file():
        raise ValueError(f"{output}: names a folder; give a model file name ending in .safetensors")


def split_held_out(dataset: Path, captures: list, test_capture_ids: Sequence[str]) -> tuple[list, list]:
    """(train, test) captures; DatasetError for an unknown held-out id or nothing left to train on."""
    known = {c.capture_id for c in captures}
    unknown = [i for i in test_capture_ids if i not in known]
    if unknown:
        raise DatasetError(dataset, f"unknown test capture id {', '.join(unknown)} "
                           f"(captures: {', '.join(sorted(known))})")
    held = set(test_capture_ids)
    train = [c for c in captures if c.capture_id not in held]
    if not train:
        raise DatasetError(dataset, "every capture is held out; none left to train on")
    return train, [c for c in captures if c.capture_id in held]


def dataset_identity(dataset: Path, given: str | None = None) -> str | None:
    """``given``, else the manifest's sha256 when the folder holds one (an uploaded dataset)."""
    if given:
        return given
    from core.dataset.check import MANIFEST_FILE, manifest_sha256, read_manifest

    if not (Path(dataset) / MANIFEST_FILE).is_file():
        return None
    return manifest_sha256(read_manifest(dataset))


def _evaluate_held_out(result, test_captures) -> dict | None:
    from core.training.metrics import classification_metrics, metrics_from_confusion
    from core.training.trainer import patch_set_from_captures, predict_patches

    if not test_captures:
        return None
    data, _ = patch_set_from_captures(test_captures, result.config.patch_size, model_kind=result.config.model_kind)
    pred = predict_patches(result.net, data.patches)
    per_capture = {}
    for index, capture_id in enumerate(data.capture_ids):
        rows = data.capture_index == index
        per_capture[capture_id] = classification_metrics(data.targets[rows], pred[rows], data.class_ids,
                                                         result.class_names)
    total = np.sum([np.asarray(m["confusion"]) for m in per_capture.values()], axis=0)
    return {"capture_ids": list(data.capture_ids),
            "overall": metrics_from_confusion(total, data.class_ids, result.class_names),
            "per_capture": per_capture}


def train_model_file(
    dataset: Path,
    output: Path,
    config: TrainingConfig,
    *,
    test_capture_ids: Sequence[str] = (),
    name: str | None = None,
    version: str = "1",
    dataset_sha256: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
    fold: int | None = None,
) -> dict:
    """Train on ``dataset`` (less the held-out captures, which are evaluated) and write ``output``.

    Returns the summary ``{"model", "sha256", "mode", "training_ids", "test_ids", "n_samples",
    "config", "metrics", "timings_s"}`` (seconds). ``name`` defaults to the file's stem.
    With ``fold`` M: only fold model M of the double-cv plan (a cluster trial), written as
    ``fold-M.safetensors`` with its record ``fold-M.json`` in ``output``'s folder; returns
    ``{"fold", "model", "record", "val_oacc", "test_oacc", "seconds", "test"}``.
    Raises DatasetError / ValueError naming the file before training; TrainingCancelled
    when ``should_stop()`` turns True.
    """
    from core.model.files import save_model
    from core.training.data_description import describe_training_data
    from core.training.trainer import train

    start = time.perf_counter()
    dataset, output = Path(dataset), Path(output)
    check_output(output)
    if fold is not None and config.cross_validation != "double":
        raise ValueError("a fold model belongs to double cross-validation: cross_validation must be 'double'")
    train_captures, test_captures = split_held_out(dataset, read_training_dataset(dataset), test_capture_ids)
    identity = dataset_identity(dataset, dataset_sha256)
    if fold is not None:
        return _train_fold(train_captures, output.parent, config, fold, name or defaults.MODEL_NAME, version,
                           {"dataset": str(dataset), "dataset_sha256": identity}, progress, should_stop, start)
    result = train(train_captures, config, progress=progress, should_stop=should_stop, workers=workers)
    metrics = dict(result.metrics)
    held_out = _evaluate_held_out(result, test_captures)
    if held_out is not None:
        metrics["held_out"] = held_out
    described = describe_training_data(train_captures)  # wavelengths and OOD description for the model file
    test_ids = [c.capture_id for c in test_captures]
    info = save_model(
        output, result.net, name=name or output.stem, version=version, class_ids=result.class_ids,
        class_names=result.class_names, profile_id=result.profile_id, wavelengths_nm=described.wavelengths_nm,
        ood=described.ood.to_dict(),
        temperature=result.temperature,  # double-cv: calibration and ensemble kept (core.model.ensemble)
        ensemble=list(zip(result.members, result.member_temperatures)),
        training={"data_ids": list(result.training_ids), "test_ids": test_ids, "n_samples": result.n_samples,
                  "hyper_parameters": config.to_dict(), "optimizer": "Adam",
                  "loss": "class-weighted cross-entropy" if config.balance == "loss" else "cross-entropy",
                  "batches": "class-balanced" if config.balance == "sampling" else "stratified",
                  "model_kind": config.model_kind, "dataset": str(dataset), "dataset_sha256": identity},
        metrics=metrics,
    )
    return {"model": str(output), "sha256": info.sha256, "mode": metrics["mode"],
            "training_ids": list(result.training_ids), "test_ids": test_ids, "n_samples": result.n_samples,
            "config": config.to_dict(), "metrics": metrics,
            "timings_s": {**result.timings_s, "wall": time.perf_counter() - start}}


def _train_fold(captures, folder: Path, config: TrainingConfig, fold: int, name: str, version: str,
                provenance: dict, progress, should_stop, start: float) -> dict:
    """Fold model ``fold`` of the double-cv plan and its record, in ``folder`` (see :func:`train_model_file`)."""
    from core.model.files import save_model
    from core.training.trainer import patch_set_from_captures, sample_groups, train_fold_model

    data, profile_id = patch_set_from_captures(captures, config.patch_size, model_kind=config.model_kind)
    net, record = train_fold_model(data, config, fold, progress=progress, should_stop=should_stop,
                                   groups=sample_groups(captures, data))
    model_path, record_path = folder / f"fold-{fold}.safetensors", folder / f"fold-{fold}.json"
    save_model(model_path, net, name=name, version=version, class_ids=data.class_ids,
               class_names=tuple(record.test["class_names"]), profile_id=profile_id,
               training={"data_ids": list(data.capture_ids), "n_samples": len(data),
                         "hyper_parameters": config.to_dict(), "fold_model": fold, **provenance},
               metrics={"mode": "double-cv fold model", "val_oacc": record.val_oacc, "test": record.test},
               temperature=record.temperature)
    record_path.write_text(record.to_json())
    return {"fold": fold, "model": str(model_path), "record": str(record_path), "val_oacc": record.val_oacc,
            "test_oacc": record.test["oacc"], "seconds": round(time.perf_counter() - start, 3), "test": record.test}


def select_model_file(folders: Sequence[Path], output: Path, folds: int) -> dict:
    """The double-cv model from fold models trained one by one (cluster trials), written to ``output``.

    ``folders`` hold the trials' ``fold-M.safetensors`` and ``fold-M.json`` records. The winner
    is chosen by :func:`core.training.double_cv.select_double_cv`; every outer winner is kept as
    the ensemble, with the temperature its trial fitted (:mod:`core.model.ensemble`). Returns
    ``{"model", "sha256", "chosen", "test_oacc_mean"}``; DatasetError naming a missing folder or a
    bad record.
    """
    from core.model.files import load_model, save_model
    from core.training.double_cv import FoldRecord, outer_winners, select_double_cv

    records, where = [], {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise DatasetError(folder, "folder of fold results not found")
        for path in sorted(folder.glob("fold-*.json")):
            try:
                record = FoldRecord.from_file(path)
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(path, f"not a fold record ({exc.__class__.__name__})") from None
            records.append(record)
            where[record.model] = folder
    chosen, metrics = select_double_cv(records, folds)
    fold_model = load_model(where[chosen] / f"fold-{chosen}.safetensors")
    info = fold_model.info
    training = {**info.training, "selected_from": len(records)}
    training.pop("fold_model", None)
    winners = [load_model(where[i] / f"fold-{i}.safetensors") for i in outer_winners(metrics)]
    metrics["calibration"] = {"temperatures": [w.info.temperature for w in winners],
                              "fitted_on": "each outer winner's validation fold"}
    saved = save_model(output, fold_model.net, name=info.name, version=info.version, class_ids=info.class_ids,
                       class_names=info.class_names, profile_id=info.profile_id, training=training, metrics=metrics,
                       temperature=info.temperature, ensemble=[(w.net, w.info.temperature) for w in winners])
    return {"model": str(output), "sha256": saved.sha256, "chosen": metrics["chosen"],
            "test_oacc_mean": metrics["test_oacc_mean"]}


class ProgressLog:
    """The progress JSON-lines file (module docstring): append-only, flushed per line, thread-safe
    enough for double-cv workers (one ``write`` per line under the GIL)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None and not Path(path).parent.is_dir():
            raise ValueError(f"{path}: folder for the progress file does not exist")
        self._file = None if path is None else open(path, "a", encoding="utf-8")

    def write(self, event: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()

    def __call__(self, p) -> None:
        self.write({"event": "epoch", "stage": p.stage, "fold": p.fold, "epoch": p.epoch, "epochs": p.epochs,
                    "loss": p.loss, "val_oacc": p.val_oacc, "fraction": p.fraction})

    def done(self, metrics: dict, model: Path | str) -> None:
        self.write({"event": "done", "metrics": metrics, "model": str(model)})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_progress(path: Path) -> list[dict]:
    """Events of a progress JSON-lines file; a half-written last line is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events
