"""The double cross-validation pipeline job (azure-ai-ml), built from a :class:`JobSpec`.

What ``neurohsi cloud train --backend azureml`` and the retraining dialog submit for double
cross-validation; ``packaging/azureml/double-cv-pipeline.yml`` is the same pipeline for a person
with ``az ml job create`` (tests/remote/test_double_cv_pipeline.py checks the two agree):

1. ``fold_models``: a sweep whose trial is the fold-model command (``python -m
   remote.training_job --fold N --cv-run <cv_run>``), grid over N = 0 .. K*K-1, one trial per fold
   model, at most ``max_concurrent_trials`` at once (the cluster's nodes). Each trial writes to its
   own output folder and logs ``val_oacc`` (the sweep's objective, exactly that name), the tag
   ``neurohsi.cv_run`` and its fold files to its MLflow run;
2. ``select``: ``neurohsi train-select --from-mlflow <cv_run>`` reads every finished trial's files
   from MLflow and writes the chosen model to the pipeline's ``model`` output.

Registration stays the explicit step after the technician's comparison (``neurohsi cloud
register``), which tags the registered model from its own metadata.

Pure functions: nothing here talks to Azure; the built job validates offline (``_validate()``).
"""
from __future__ import annotations

import re
import uuid

from remote.training_backends.base import JobError, JobSpec

OBJECTIVE = "val_oacc"  # remote.tracking.OBJECTIVE_METRIC (not imported: MLflow stays unloaded here)
TRIAL_TIMEOUT_S = 86400
_CV_RUN = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")

FOLD_COMMAND = (
    "python -m remote.training_job --dataset-dir ${{inputs.dataset}} --output-dir ${{outputs.folds}}"
    " --fold ${{inputs.fold}} --cross-validation double --epochs ${{inputs.epochs}}"
    " --batch-size ${{inputs.batch_size}} --patch-size ${{inputs.patch_size}} --folds ${{inputs.folds}}"
    " --lr ${{inputs.lr}} --seed ${{inputs.seed}} --model-kind ${{inputs.model_kind}}"
    " --balance ${{inputs.balance}} --model-name ${{inputs.model_name}}"
    " --version ${{inputs.model_version}} --cv-run ${{inputs.cv_run}}"
)
SELECT_COMMAND = (
    "python -m remote.training_select --from-mlflow ${{inputs.cv_run}}"
    " -o ${{outputs.model}}/model.safetensors --folds ${{inputs.k}}"
)


def new_cv_run() -> str:
    """A fresh double-cv run id: trials of two submissions never mix in the selection."""
    return "cv-" + uuid.uuid4().hex[:16]


def fold_component(environment, spec: JobSpec | None = None):
    """The fold-model trial as a ``CommandComponent`` (inputs typed as in fold-model-component.yml);
    ``spec``'s training / held-out captures, if any, are flags of the command (as in the command job)."""
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CommandComponent

    return CommandComponent(
        name="neurohsi_fold_model",
        version="1",
        display_name="conv2dnet fold model",
        inputs={
            "dataset": Input(type="uri_folder"),
            "fold": Input(type="integer"),
            "epochs": Input(type="integer"),
            "batch_size": Input(type="integer"),
            "patch_size": Input(type="integer"),
            "folds": Input(type="integer"),
            "lr": Input(type="number"),
            "seed": Input(type="integer"),
            "model_kind": Input(type="string"),
            "balance": Input(type="string"),
            "model_name": Input(type="string"),
            "model_version": Input(type="string"),
            "cv_run": Input(type="string"),
        },
        outputs={"folds": Output(type="uri_folder")},
        command=FOLD_COMMAND + _capture_flags(spec),
        environment=environment,
    )


def _capture_flags(spec: JobSpec | None) -> str:
    if spec is None:
        return ""
    return "".join([f" --train-capture {cid}" for cid in spec.train_capture_ids]
                   + [f" --test-capture {cid}" for cid in spec.test_capture_ids])


def build_double_cv_pipeline(
    spec: JobSpec,
    *,
    compute: str,
    environment,
    dataset_path: str,
    cv_run: str | None = None,
    max_concurrent_trials: int = 5,
    experiment_name: str = "neurohsi-training",
):
    """The ``PipelineJob`` for ``spec`` (double cross-validation only; JobError otherwise).

    ``environment``: ``azureml:NAME:VERSION`` / ``azureml:NAME@latest`` or an ``Environment``;
    ``dataset_path``: the uploaded dataset's ``azureml://`` URI (or a data asset);
    ``cv_run``: the run id the trials are tagged with (a fresh one when None).
    """
    from azure.ai.ml import Input, Output, dsl
    from azure.ai.ml.entities import CommandComponent
    from azure.ai.ml.sweep import Choice

    cfg = spec.training  # core.training.config.TrainingConfig
    if cfg.cross_validation != "double":
        raise JobError("the double cross-validation pipeline needs cross_validation='double'")
    if not isinstance(max_concurrent_trials, int) or max_concurrent_trials < 1:
        raise JobError(f"max concurrent trials must be a positive integer, got {max_concurrent_trials!r}")
    cv_run = cv_run or new_cv_run()
    if not _CV_RUN.match(cv_run):
        raise JobError(f"double-cv run id must be 1-128 letters, digits or _.:-, got {cv_run[:40]!r}")
    n_models = cfg.folds * cfg.folds
    trial = fold_component(environment, spec)
    selection = CommandComponent(
        name="neurohsi_double_cv_select",
        version="1",
        display_name="double-cv selection",
        inputs={"after_trials": Input(type="uri_folder"), "cv_run": Input(type="string"), "k": Input(type="integer")},
        outputs={"model": Output(type="custom_model")},
        command=SELECT_COMMAND,
        environment=environment,
    )

    @dsl.pipeline(
        name="neurohsi_double_cv",
        display_name=f"{spec.model_name} double cross-validation on {spec.dataset}",
        description="NeuroHSI Conv2DNet: one sweep trial per fold model, then the double-cv selection",
        experiment_name=experiment_name,
        default_compute=compute,
    )
    def double_cv(dataset, epochs, batch_size, patch_size, folds, lr, seed, model_kind, balance, model_name,
                  model_version, run_id):
        trials = trial(
            dataset=dataset, fold=Choice(values=list(range(n_models))), epochs=epochs, batch_size=batch_size,
            patch_size=patch_size, folds=folds, lr=lr, seed=seed, model_kind=model_kind, balance=balance,
            model_name=model_name,
            model_version=model_version, cv_run=run_id,
        )
        fold_models = trials.sweep(primary_metric=OBJECTIVE, goal="maximize", sampling_algorithm="grid")
        fold_models.set_limits(max_total_trials=n_models, max_concurrent_trials=min(max_concurrent_trials, n_models),
                         timeout=TRIAL_TIMEOUT_S)
        # after_trials only orders this step after the sweep; every trial is read from MLflow.
        select = selection(after_trials=fold_models.outputs.folds, cv_run=run_id, k=folds)
        return {"model": select.outputs.model}

    job = double_cv(
        dataset=Input(type="uri_folder", path=dataset_path, mode="ro_mount"),
        epochs=cfg.epochs, batch_size=cfg.batch_size, patch_size=cfg.patch_size, folds=cfg.folds,
        lr=float(cfg.lr), seed=cfg.seed, model_kind=cfg.model_kind, balance=cfg.balance,
        model_name=spec.model_name, model_version=spec.model_version,
        run_id=cv_run,
    )
    job.tags = {"neurohsi.dataset": spec.dataset, "neurohsi.model": spec.model_name, "neurohsi.cv_run": cv_run}
    return job
