"""``neurohsi train`` and ``neurohsi evaluate``: training (Conv2DNet or SpectralNet) and leave-one-patient-out evaluation.

Training itself is :func:`core.training.run.train_model_file`, as in a training job
(remote/training_job.py); here are only the flags and the progress shown.
``train --progress-jsonl FILE`` appends the JSON lines of :class:`core.training.run.ProgressLog`.
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
    p.add_argument("--model-kind", choices=("conv2dnet", "spectral"), default="conv2dnet",
                   help="conv2dnet: the thesis's 7x7-patch network (default); spectral: a per-pixel 1-D network "
                        "over the bands, for labelled spectra without an image")
    p.add_argument("--balance", choices=("none", "sampling", "loss"), default="none",
                   help="class balance: none (thesis), sampling (class-balanced batches), "
                        "loss (inverse-frequency weighted loss; spectral model only)")


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
    _add_hyper_parameters(p, folds=False)
    p.add_argument("--no-cv", action="store_true", help="no-cv training in each round (always so; kept for old scripts)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="repeat every fold with seeds S..S+N-1; figures are means, with standard deviations")
    p.add_argument("--baseline", action="store_true",
                   help="also score a per-pixel linear SVM and the majority class on the same folds")
    p.add_argument("--fixed-epochs", action="store_true",
                   help="train every fold for --epochs (default: the epoch count is chosen by an inner "
                        "leave-one-patient-out over the fold's training patients, when it has 2 or more)")
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
        model_kind=args.model_kind,
        balance=args.balance,
    )


def _read_dataset(path: Path):
    from core.training.run import read_training_dataset

    return read_training_dataset(path)


class _ProgressSink:
    """Fans one TrainingProgress out to a tqdm bar on stderr, the JSON-lines file and MLflow."""

    def __init__(self, total: int, jsonl: Path | None, *, label: str = "training", tracker=None) -> None:
        from tqdm import tqdm

        from core.training.run import ProgressLog

        self.log = ProgressLog(jsonl)
        self.bar = tqdm(total=total, desc=label, unit="epoch", file=sys.stderr, mininterval=1.0)
        self.tracker = tracker  # remote.tracking.MlflowProgress, or None

    def __call__(self, p) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{p.loss:.4f}", **({} if p.val_oacc is None else {"val": f"{p.val_oacc:.3f}"}))
        self.log(p)
        if self.tracker is not None:
            self.tracker(p)

    def done(self, metrics: dict, model: Path) -> None:
        self.log.done(metrics, model)
        if self.tracker is not None:
            self.tracker.finish(metrics)

    def close(self) -> None:
        self.bar.close()
        self.log.close()


def _tracking(args: argparse.Namespace, config, *, fold: int | None = None):
    from remote.tracking import TrainingRun

    return TrainingRun(args.mlflow_uri, config, dataset_name=args.dataset.name, run_name=args.output.stem,
                       model_name=args.name or args.output.stem, fold=fold, cv_run=args.cv_run)


def cmd_train(args: argparse.Namespace) -> int:
    from core.training.run import check_output, train_model_file

    config = _config(args, "none" if args.no_cv else "double")
    check_output(args.output)
    if args.progress_jsonl is not None and not args.progress_jsonl.parent.is_dir():
        raise ValueError(f"{args.progress_jsonl}: folder for --progress-jsonl does not exist")
    if args.fold is not None and config.cross_validation != "double":  # said in the flags' words
        raise ValueError("--fold trains one fold model of double cross-validation: drop --no-cv")
    if args.cv_run is not None and args.fold is None:
        raise ValueError("--cv-run names the double-cv run of one trial: give --fold too")
    fold = args.fold
    n_models = 1 if config.cross_validation == "none" or fold is not None else config.folds**2
    tracking = _tracking(args, config, fold=fold)
    label = "training" if fold is None else f"fold {fold}"
    sink = _ProgressSink(config.epochs * n_models, args.progress_jsonl, label=label, tracker=tracking.start())
    try:
        summary = train_model_file(args.dataset, args.output, config, test_capture_ids=args.test_capture,
                                   name=args.name, version=args.version, dataset_sha256=args.dataset_sha256,
                                   progress=sink, workers=args.workers, fold=fold)
        if fold is not None:
            if sink.tracker is not None:  # the sweep's objective and this trial's own files (remote.tracking)
                sink.tracker.finish_trial(summary)
            summary = {k: v for k, v in summary.items() if k != "test"}
        else:
            sink.done(summary["metrics"], args.output)
        tracking.end("FINISHED")
    finally:
        tracking.end("FAILED")  # no-op after FINISHED
        sink.close()
    print(json.dumps(summary))
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
    from core.training.run import select_model_file

    print(json.dumps(select_model_file(folders, args.output, args.folds)))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.training.evaluation import format_evaluation_table, leave_one_patient_out, patient_groups

    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    config = _config(args, "none")
    captures = _read_dataset(args.dataset)
    baselines = None
    if args.baseline:
        from app.cli.baselines import BASELINES

        baselines = BASELINES
    patients = len(patient_groups(captures))
    # models trained per fold: the inner ones (one per training patient) and the fold's own
    per_fold = 1 if args.fixed_epochs or patients - 1 < 2 else patients
    sink = _ProgressSink(config.epochs * per_fold * patients * args.seeds, None, label="evaluating")
    try:
        report = leave_one_patient_out(captures, config, seeds=args.seeds, inner=not args.fixed_epochs,
                                       baselines=baselines, progress=lambda patient, p: sink(p))
    finally:
        sink.close()
    report["model"]["dataset"] = str(args.dataset)
    print(json.dumps(report) if args.json else format_evaluation_table(report))
    return 0
