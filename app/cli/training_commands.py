"""``neurohsi train`` and ``neurohsi evaluate``: Conv2DNet training and leave-one-patient-out evaluation.

``train --progress-jsonl FILE`` appends one JSON object a line and flushes each:
``{"event": "epoch", "stage", "fold", "epoch", "epochs", "loss", "val_oacc", "fraction"}``
for every epoch of every model, then ``{"event": "done", "metrics": {...}, "model": path}``.
The same per-epoch loss/accuracy and the final metrics go to MLflow when MLflow's own
``MLFLOW_TRACKING_URI`` is set or ``--mlflow-uri`` is given (``remote.tracking``; a run
named by ``MLFLOW_RUN_ID`` is continued, as in an Azure ML job or a local backend job).
The local training backend, the GUI and ``neurohsi cloud`` read both through
``remote.tracking.read_job_metrics``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import defaults


def _add_hyper_parameters(p: argparse.ArgumentParser, *, folds: bool = True) -> None:
    p.add_argument("--epochs", type=int, default=defaults.EPOCHS, metavar="N", help=f"epochs (default {defaults.EPOCHS})")
    p.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE, metavar="N", help=f"batch size (default {defaults.BATCH_SIZE})")
    p.add_argument("--patch-size", type=int, default=defaults.PATCH_SIZE, metavar="N", help=f"patch size, odd (default {defaults.PATCH_SIZE})")
    p.add_argument("--lr", type=float, default=defaults.LEARNING_RATE, metavar="X", help=f"Adam learning rate (default {defaults.LEARNING_RATE:g})")
    p.add_argument("--seed", type=int, default=defaults.SEED, metavar="S", help=f"random seed (default {defaults.SEED})")
    if folds:
        p.add_argument("--folds", type=int, default=defaults.FOLDS, metavar="K", help=f"folds of double cross-validation (default {defaults.FOLDS})")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a Conv2DNet model on a dataset folder",
        description="Train Conv2DNet as the thesis (Adam, cross-entropy, stratified batches; double "
        "cross-validation unless --no-cv). Progress bar on stderr, JSON summary on stdout.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (DATASET/<capture_id>/{raw,dark,white}.tif, labels.png)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.safetensors", help="model file to write")
    p.add_argument("--test-capture", action="append", default=[], metavar="ID",
                   help="hold this capture out of training and evaluate on it (repeatable)")
    _add_hyper_parameters(p)
    p.add_argument("--no-cv", action="store_true", help="one model on all training pixels (no cross-validation)")
    p.add_argument("--progress-jsonl", type=Path, metavar="FILE", help="append per-epoch progress as JSON lines")
    p.add_argument("--mlflow-uri", default=None, metavar="URI",
                   help="log metrics to this MLflow tracking URI (default: $MLFLOW_TRACKING_URI; unset = no MLflow)")
    p.add_argument("--name", help="model name stored in the file (default: the output file's stem)")
    p.add_argument("--version", default="1", help="model version stored in the file (default 1)")
    p.add_argument("--dataset-sha256", default=None, metavar="HEX",
                   help="identity of the uploaded dataset to record in the model (default: from DATASET/manifest.json)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="threads training double-cv fold models side by side (default: CPU cores, at most 2)")
    p.add_argument("--fold", type=int, default=None, metavar="M",
                   help="train only double-cv fold model M (outer * folds + inner), as one cluster trial does; "
                        "writes fold-M.safetensors and fold-M.json into the folder of -o")
    p.add_argument("--cv-run", default=None, metavar="ID",
                   help="with --fold: the double-cv run this trial belongs to; tags its MLflow run and logs its "
                        "outputs there, so train-select --from-mlflow finds every trial")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser(
        "train-select",
        help="pick the final double-cv model from fold models trained one by one (cluster trials)",
        description="Reads fold-M.json / fold-M.safetensors of every fold model (neurohsi train --fold M) and "
        "selects as double cross-validation does: the best inner model by validation OACC per outer fold, "
        "then the outer winner with the best test OACC.",
    )
    p.add_argument("folds_dirs", type=Path, nargs="*", metavar="FOLDER",
                   help="folders holding fold-*.json and fold-*.safetensors (e.g. each trial's own output)")
    p.add_argument("--from-mlflow", default=None, metavar="CV_RUN",
                   help="read the trials of double-cv run CV_RUN from MLflow ($MLFLOW_TRACKING_URI or --mlflow-uri)")
    p.add_argument("--mlflow-uri", default=None, metavar="URI", help="MLflow tracking URI for --from-mlflow")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.safetensors")
    p.add_argument("--folds", type=int, default=defaults.FOLDS, metavar="K")
    p.set_defaults(handler=cmd_train_select)

    p = subparsers.add_parser(
        "evaluate",
        help="leave-one-patient-out evaluation on a dataset folder",
        description="For each patient: train on all other patients, classify the held-out patient's labelled "
        "pixels. Reports OACC, per-class sensitivity/specificity and the confusion matrix.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder")
    _add_hyper_parameters(p)
    p.add_argument("--no-cv", action="store_true", help="no-cv training in each round (the default)")
    p.add_argument("--double-cv", action="store_true", help="double cross-validation in each round (25 models)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.set_defaults(handler=cmd_evaluate)


def _config(args: argparse.Namespace, cross_validation: str):
    from core.training.trainer import TrainingConfig

    return TrainingConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        lr=args.lr,
        folds=getattr(args, "folds", defaults.FOLDS),
        cross_validation=cross_validation,
        seed=args.seed,
    )


def _read_dataset(path: Path):
    from core.dataset.folders import read_dataset
    from core.errors import DatasetError

    if not path.is_dir():
        raise DatasetError(path, "dataset folder not found")
    captures = read_dataset(path)
    if not captures:
        raise DatasetError(path, "dataset has no captures")
    return captures


class _ProgressSink:
    """Fans one TrainingProgress out to a tqdm bar on stderr and the JSON-lines file."""

    def __init__(self, total: int, jsonl: Path | None, *, label: str = "training", tracker=None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="epoch", file=sys.stderr, mininterval=1.0)
        self.file = None if jsonl is None else open(jsonl, "a", encoding="utf-8")
        self.tracker = tracker  # remote.tracking.MlflowProgress, or None

    def write(self, event: dict) -> None:
        if self.file is not None:
            self.file.write(json.dumps(event) + "\n")
            self.file.flush()

    def __call__(self, p) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{p.loss:.4f}", **({} if p.val_oacc is None else {"val": f"{p.val_oacc:.3f}"}))
        self.write({"event": "epoch", "stage": p.stage, "fold": p.fold, "epoch": p.epoch, "epochs": p.epochs,
                    "loss": p.loss, "val_oacc": p.val_oacc, "fraction": p.fraction})
        if self.tracker is not None:
            self.tracker(p)

    def done(self, metrics: dict, model: Path) -> None:
        self.write({"event": "done", "metrics": metrics, "model": str(model)})
        if self.tracker is not None:
            self.tracker.finish(metrics)

    def close(self) -> None:
        self.bar.close()
        if self.file is not None:
            self.file.close()


class _MlflowRun:
    """The MLflow run ``neurohsi train`` logs to: none unless ``--mlflow-uri`` or ``$MLFLOW_TRACKING_URI``.

    A run named by ``$MLFLOW_RUN_ID`` (Azure ML job, local backend job) is continued and
    left for its owner to end; otherwise a run is created here and ended here.
    """

    def __init__(self, args: argparse.Namespace, config, *, fold: int | None = None) -> None:
        import os

        self.uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.args, self.config, self.fold = args, config, fold
        self.run_id: str | None = None
        self.owned = False

    def start(self):
        """The progress logger (``remote.tracking.MlflowProgress``), or None without a tracking URI."""
        if self.uri is None:
            return None
        import os

        from remote import tracking

        params = {**self.config.to_dict(), tracking.FOLDS_PARAM: self.config.folds, "dataset": self.args.dataset.name}
        if self.fold is not None:
            params["fold_model"] = self.fold
        self.run_id = os.environ.get(tracking.RUN_ID_ENV) or None
        if self.run_id is None:
            self.run_id = tracking.start_run(self.uri, run_name=self.args.output.stem,
                                             tags={"neurohsi.model": self.args.name or self.args.output.stem})
            self.owned = True
        logger = tracking.MlflowProgress(self.uri, self.run_id)
        logger.log_params(params)
        if getattr(self.args, "cv_run", None):  # tagged at the start, so its progress is found while it runs
            logger.set_tags({tracking.CV_RUN_TAG: self.args.cv_run})
        return logger

    def end(self, status: str) -> None:
        if self.owned and self.run_id is not None:
            from remote import tracking

            tracking.end_run(self.uri, self.run_id, status)
            self.owned = False


def _summary_metrics(result, test: dict | None) -> dict:
    """Compact metrics for the model file and the ``done`` event."""
    metrics = dict(result.metrics)
    if test is not None:
        metrics["held_out"] = test
    return metrics


def _evaluate_held_out(result, test_captures) -> dict | None:
    from core.training.metrics import classification_metrics, metrics_from_confusion
    from core.training.trainer import patch_set_from_captures, predict_patches

    if not test_captures:
        return None
    import numpy as np

    data, _ = patch_set_from_captures(test_captures, result.config.patch_size)
    pred = predict_patches(result.net, data.patches)
    per_capture = {}
    for index, capture_id in enumerate(data.capture_ids):
        rows = data.capture_index == index
        per_capture[capture_id] = classification_metrics(data.targets[rows], pred[rows], data.class_ids,
                                                         result.class_names)
    total = np.sum([np.asarray(m["confusion"]) for m in per_capture.values()], axis=0)
    return {"capture_ids": list(data.capture_ids), "overall": metrics_from_confusion(total, data.class_ids,
                                                                                       result.class_names),
            "per_capture": per_capture}


def cmd_train(args: argparse.Namespace) -> int:
    from core.errors import DatasetError

    config = _config(args, "none" if args.no_cv else "double")
    output = args.output
    if output.suffix != ".safetensors":
        raise ValueError(f"{output}: model file must end in .safetensors")
    if not output.parent.is_dir():
        raise ValueError(f"{output}: folder for -o does not exist")
    if output.exists() and not output.is_file():  # checked before hours of training, not after
        raise ValueError(f"{output}: -o names a folder; give a model file name ending in .safetensors")
    if args.progress_jsonl is not None and not args.progress_jsonl.parent.is_dir():
        raise ValueError(f"{args.progress_jsonl}: folder for --progress-jsonl does not exist")
    captures = _read_dataset(args.dataset)
    known = {c.capture_id for c in captures}
    unknown = [i for i in args.test_capture if i not in known]
    if unknown:
        raise DatasetError(args.dataset, f"unknown test capture id {', '.join(unknown)} "
                           f"(captures: {', '.join(sorted(known))})")
    test_ids = set(args.test_capture)
    train_captures = [c for c in captures if c.capture_id not in test_ids]
    test_captures = [c for c in captures if c.capture_id in test_ids]
    if not train_captures:
        raise DatasetError(args.dataset, "every capture is held out with --test-capture; none left to train on")

    from core.model.files import save_model
    from core.training.trainer import train

    if args.cv_run is not None and args.fold is None:
        raise ValueError("--cv-run names the double-cv run of one trial: give --fold too")
    if args.fold is not None:
        return _train_one_fold(args, config, train_captures)
    start = time.perf_counter()
    n_models = 1 if config.cross_validation == "none" else config.folds**2
    tracking = _MlflowRun(args, config)
    sink = _ProgressSink(config.epochs * n_models, args.progress_jsonl, tracker=tracking.start())
    try:
        result = train(train_captures, config, progress=sink, workers=args.workers)
        held_out = _evaluate_held_out(result, test_captures)
        metrics = _summary_metrics(result, held_out)
        from core.training.data_description import describe_training_data

        described = describe_training_data(train_captures)  # wavelengths and OOD description for the model file
        info = save_model(
            output,
            result.net,
            name=args.name or output.stem,
            version=args.version,
            class_ids=result.class_ids,
            class_names=result.class_names,
            profile_id=result.profile_id,
            wavelengths_nm=described.wavelengths_nm,
            ood=described.ood.to_dict(),
            training={
                "data_ids": list(result.training_ids),
                "test_ids": [c.capture_id for c in test_captures],
                "n_samples": result.n_samples,
                "hyper_parameters": config.to_dict(),
                "optimizer": "Adam",
                "loss": "cross-entropy",
                "batches": "stratified",
                "dataset": str(args.dataset),
                "dataset_sha256": _dataset_sha256(args),
            },
            metrics=metrics,
        )
        sink.done(metrics, output)
        tracking.end("FINISHED")
    finally:
        tracking.end("FAILED")  # no-op after FINISHED
        sink.close()
    summary = {
        "model": str(output),
        "sha256": info.sha256,
        "mode": metrics["mode"],
        "training_ids": list(result.training_ids),
        "test_ids": [c.capture_id for c in test_captures],
        "n_samples": result.n_samples,
        "config": config.to_dict(),
        "metrics": metrics,
        "timings_s": {**result.timings_s, "wall": time.perf_counter() - start},
    }
    print(json.dumps(summary))
    return 0


def _dataset_sha256(args: argparse.Namespace) -> str | None:
    """``--dataset-sha256``, else the manifest's identity when the folder holds one (an uploaded dataset)."""
    if args.dataset_sha256:
        return args.dataset_sha256
    from core.dataset.check import MANIFEST_FILE, manifest_sha256, read_manifest

    if not (args.dataset / MANIFEST_FILE).is_file():
        return None
    return manifest_sha256(read_manifest(args.dataset))


def _train_one_fold(args: argparse.Namespace, config, captures) -> int:
    """``train --fold M``: one fold model of the double-cv plan, its record beside it (a cluster trial)."""
    from core.model.files import save_model
    from core.training.trainer import patch_set_from_captures, train_fold_model

    if config.cross_validation != "double":
        raise ValueError("--fold trains one fold model of double cross-validation: drop --no-cv")
    start = time.perf_counter()
    data, profile_id = patch_set_from_captures(captures, config.patch_size)
    tracking = _MlflowRun(args, config, fold=args.fold)
    sink = _ProgressSink(config.epochs, args.progress_jsonl, label=f"fold {args.fold}", tracker=tracking.start())
    folder = args.output.parent
    model_path, record_path = folder / f"fold-{args.fold}.safetensors", folder / f"fold-{args.fold}.json"
    try:
        net, record = train_fold_model(data, config, args.fold, progress=sink)
        names = tuple(record.test["class_names"])
        save_model(model_path, net, name=args.name or "conv2dnet", version=args.version, class_ids=data.class_ids,
                   class_names=names, profile_id=profile_id,
                   training={"data_ids": list(data.capture_ids), "n_samples": len(data),
                             "hyper_parameters": config.to_dict(), "fold_model": args.fold,
                             "dataset": str(args.dataset), "dataset_sha256": _dataset_sha256(args)},
                   metrics={"mode": "double-cv fold model", "val_oacc": record.val_oacc, "test": record.test})
        record_path.write_text(record.to_json())
        if sink.tracker is not None:
            sink.tracker.finish({"val_oacc": record.val_oacc, "test": record.test})
            # The sweep's objective under its exact name, and this trial's own outputs for the selection.
            sink.tracker.log_trial(record.val_oacc, [record_path, model_path])
        tracking.end("FINISHED")
    finally:
        tracking.end("FAILED")
        sink.close()
    print(json.dumps({"fold": args.fold, "model": str(model_path), "record": str(record_path),
                      "val_oacc": record.val_oacc, "test_oacc": record.test["oacc"],
                      "seconds": round(time.perf_counter() - start, 3)}))
    return 0


def cmd_train_select(args: argparse.Namespace) -> int:
    import tempfile

    if bool(args.folds_dirs) == bool(args.from_mlflow):
        raise ValueError("give the trials' folders or --from-mlflow CV_RUN (one of them)")
    with tempfile.TemporaryDirectory() as tmp:
        folders = args.folds_dirs
        if args.from_mlflow:
            import os

            from remote import tracking

            uri = args.mlflow_uri or os.environ.get(tracking.TRACKING_URI_ENV)
            if not uri:
                raise ValueError("--from-mlflow needs --mlflow-uri or $MLFLOW_TRACKING_URI")
            folders = tracking.fetch_cv_trials(uri, args.from_mlflow, tmp)
        return _select_from(folders, args)


def _select_from(folders: list[Path], args: argparse.Namespace) -> int:
    from core.training.double_cv import FoldRecord, select_double_cv
    from core.errors import DatasetError
    from core.model.files import load_model, save_model

    records, where = [], {}
    for folder in folders:
        if not folder.is_dir():
            raise DatasetError(folder, "folder of fold results not found")
        for path in sorted(folder.glob("fold-*.json")):
            try:
                record = FoldRecord.from_file(path)
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(path, f"not a fold record ({exc.__class__.__name__})") from None
            records.append(record)
            where[record.model] = folder
    chosen, metrics = select_double_cv(records, args.folds)
    fold_model = load_model(where[chosen] / f"fold-{chosen}.safetensors")
    info = fold_model.info
    training = {**info.training, "selected_from": len(records)}
    training.pop("fold_model", None)
    saved = save_model(args.output, fold_model.net, name=info.name, version=info.version, class_ids=info.class_ids,
                       class_names=info.class_names, profile_id=info.profile_id, training=training, metrics=metrics)
    print(json.dumps({"model": str(args.output), "sha256": saved.sha256, "chosen": metrics["chosen"],
                      "test_oacc_mean": metrics["test_oacc_mean"]}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.training.evaluation import format_evaluation_table, leave_one_patient_out, patient_groups

    if args.no_cv and args.double_cv:
        raise ValueError("give --no-cv or --double-cv, not both")
    config = _config(args, "double" if args.double_cv else "none")
    captures = _read_dataset(args.dataset)
    n_models = 1 if config.cross_validation == "none" else config.folds**2
    sink = _ProgressSink(config.epochs * n_models * len(patient_groups(captures)), None, label="evaluating")
    try:
        report = leave_one_patient_out(captures, config, progress=lambda patient, p: sink(p))
    finally:
        sink.close()
    report["dataset"] = str(args.dataset)
    print(json.dumps(report) if args.json else format_evaluation_table(report))
    return 0
