"""Double cross-validation on a cluster (issue 24): trials log the sweep's objective, the selection reads
every trial's own outputs, and the Azure ML backend submits a pipeline job that validates offline.

Azure ML itself never runs here: trials run locally (the packaged component's command, with an MLflow
file store standing in for the workspace's MLflow, as Azure ML sets MLFLOW_TRACKING_URI in a job), and the
backend talks to a stand-in for ``MLClient`` that records what it was asked to submit.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from core.dataset.check import MANIFEST_FILE, sha256_of
from remote.training_backends.azureml_pipeline import FOLD_COMMAND, SELECT_COMMAND, build_double_cv_pipeline
from remote.training_backends.base import JobError, JobSpec

ROOT = Path(__file__).resolve().parents[2]
AZUREML = ROOT / "packaging" / "azureml"
K = 2  # folds: 4 fold models, enough to have a choice
COMMON = {"epochs": "2", "batch_size": "16", "patch_size": "7", "folds": str(K), "lr": "0.001", "seed": "1",
          "model_kind": "conv2dnet", "balance": "none", "model_name": "cv", "model_version": "3"}

pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two small captures (two patients) with the manifest an upload leaves (the trial verifies it)."""
    from core.capture.synthetic.captures import generate_capture, small_profile
    from core.dataset.folders import write_capture_folder

    root = tmp_path_factory.mktemp("ward") / "ward7"
    for k, patient in enumerate(("ID18", "ID20")):
        cap = generate_capture(seed=k, patient=patient, profile=small_profile(12, 16))
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                             metadata=cap.metadata, meta={"patient": patient})
    files = [{"path": p.relative_to(root).as_posix(), "size": p.stat().st_size, "sha256": sha256_of(p)}
             for p in sorted(root.rglob("*")) if p.is_file()]
    (root / MANIFEST_FILE).write_text(json.dumps({"name": "ward7", "files": files}))
    return root


@pytest.fixture(scope="module")
def packaged():
    from azure.ai.ml import load_job

    return load_job(AZUREML / "double-cv-pipeline.yml")


def _trial_argv(command: str, *, dataset: Path, out: Path, fold: int, cv_run: str) -> list[str]:
    """The component's command line with its ${{...}} bindings filled as Azure ML fills them."""
    values = {**COMMON, "dataset": str(dataset), "fold": str(fold), "cv_run": cv_run}
    for name, value in values.items():
        command = command.replace(f"${{{{inputs.{name}}}}}", value)
    command = command.replace("${{outputs.folds}}", str(out))
    assert "${{" not in command, command
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "remote.training_job"]
    return [sys.executable, *argv[1:]]


@pytest.fixture(scope="module")
def trials(dataset, packaged, tmp_path_factory):
    """Every fold model trained as its own trial (own output folder), logging to one MLflow file store."""
    base = tmp_path_factory.mktemp("trials")
    store = (base / "mlruns").resolve().as_uri()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_ALLOW_FILE_STORE": "true",
           "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_RUN_ID", None)
    command = packaged.jobs["fold_models"].trial.command
    outputs = [base / f"trial-{fold}" for fold in range(K * K)]
    # Trial 0 exactly as the cluster runs it (the packaged component's command, a fresh process);
    # the others through the same CLI in this process (what that command runs), to keep the test short.
    done = subprocess.run(_trial_argv(command, dataset=dataset, out=outputs[0], fold=0, cv_run="cv-run-a"),
                          capture_output=True, text=True, timeout=300, env=env, cwd=base)
    assert done.returncode == 0, done.stderr[-2000:]
    from app.cli.main import main

    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_RUN_ID")}
    os.environ.update(MLFLOW_TRACKING_URI=store, MLFLOW_ALLOW_FILE_STORE="true")
    os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        for fold in range(1, K * K):
            outputs[fold].mkdir()
            argv = ["train", str(dataset), "-o", str(outputs[fold] / "model.safetensors"), "--fold", str(fold),
                    "--cv-run", "cv-run-a", "--epochs", COMMON["epochs"], "--folds", str(K), "--seed",
                    COMMON["seed"], "--name", "cv", "--version", "3"]
            assert main(argv) == 0
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    return SimpleNamespace(store=store, outputs=outputs, env=env)


def test_each_trial_logs_the_sweeps_objective_under_its_exact_name(trials, packaged):
    from remote.tracking import mlflow_client

    objective = packaged.jobs["fold_models"].objective.primary_metric
    client = mlflow_client(trials.store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == K * K
    for run in runs:
        fold = int(run.data.params["fold_model"])
        record = json.loads((trials.outputs[fold] / f"fold-{fold}.json").read_text())
        assert run.data.metrics[objective] == pytest.approx(record["val_oacc"])
        assert run.data.tags["neurohsi.cv_run"] == "cv-run-a"
        # every trial wrote into its own folder: nothing of another trial is there
        assert sorted(p.name for p in trials.outputs[fold].glob("fold-*")) == [f"fold-{fold}.json",
                                                                                  f"fold-{fold}.safetensors"]


def _expected_choice(outputs: list[Path]) -> int:
    """The double-cv rule written out plainly: best inner by validation OACC per outer fold, then best test OACC."""
    records = {}
    for folder in outputs:
        for path in folder.glob("fold-*.json"):
            r = json.loads(path.read_text())
            records[r["model"]] = r
    winners = []
    for o in range(K):
        inner = max(range(K), key=lambda j: (records[o * K + j]["val_oacc"], -j))
        winners.append(o * K + inner)
    return max(winners, key=lambda m: (records[m]["test"]["oacc"], -m))


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize("source", ["trial-folders", "mlflow"])
def test_selection_over_the_trials_own_outputs_picks_the_right_model(trials, tmp_path, source):
    from remote.tracking import mlflow_client

    if source == "mlflow":
        # Another run's trial in the same store must not be mixed in.
        client = mlflow_client(trials.store)
        other = client.create_run(client.search_experiments()[0].experiment_id)
        client.set_tag(other.info.run_id, "neurohsi.cv_run", "cv-run-b")
        stray = tmp_path / "fold-0.json"
        stray.write_text(json.dumps({"model": 0, "outer": 0, "inner": 0, "val_oacc": 1.0,
                                     "test": {"oacc": 1.0}, "plan_id": "another-run"}))
        client.log_artifact(other.info.run_id, str(stray), "fold")
        client.set_terminated(other.info.run_id)
        # the pipeline's own selection step (SELECT_COMMAND): remote code, no app
        select = ["-m", "remote.training_select", "--from-mlflow", "cv-run-a"]
    else:
        select = ["-m", "app.cli.main", "train-select", *(str(p) for p in trials.outputs)]
    out = tmp_path / "model.safetensors"
    done = subprocess.run([sys.executable, *select, "-o", str(out), "--folds", str(K)],
                          capture_output=True, text=True, timeout=120, env=trials.env)
    assert done.returncode == 0, done.stderr[-2000:]
    chosen = _expected_choice(trials.outputs)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["chosen"]["outer"] * K + summary["chosen"]["inner"] == chosen
    fold_weights = _weights(trials.outputs[chosen] / f"fold-{chosen}.safetensors")
    selected = _weights(out)  # the chosen net, plus the outer winners as its ensemble
    for name, value in fold_weights.items():
        np.testing.assert_array_equal(selected[name], value)


def test_selection_needs_folders_or_a_run(tmp_path, trials):
    done = subprocess.run([sys.executable, "-m", "app.cli.main", "train-select", "-o", str(tmp_path / "m.safetensors")],
                          capture_output=True, text=True, timeout=60, env=trials.env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--from-mlflow" in done.stderr


def test_the_trials_progress_is_read_as_one_run(trials):
    from remote.tracking import read_cv_run_metrics

    events = read_cv_run_metrics(trials.store, "cv-run-a")
    assert {e["fold"] for e in events} == set(range(K * K))
    assert len(events) == K * K * int(COMMON["epochs"])
    assert events[-1]["fraction"] == pytest.approx(1.0)
    assert read_cv_run_metrics(trials.store, "cv-run-none") == []


# ------------------------------------------------------------------ the pipeline job


def _spec(cross_validation: str = "double", **kw) -> JobSpec:
    from core.training.config import TrainingConfig

    training = TrainingConfig(epochs=3, folds=K, cross_validation=cross_validation)
    return JobSpec(**{"dataset": "ward7", "training": training, "model_name": "cv", "model_version": "3", **kw})


def _built(**kw):
    return build_double_cv_pipeline(_spec(), compute="cpu-cluster", environment="azureml:neurohsi-train:2",
                                    dataset_path="azureml://datastores/neurohsi/paths/datasets/ward7/",
                                    cv_run="cv-abc", **kw)


def test_built_pipeline_validates_and_round_trips_through_the_sdk_schema(tmp_path):
    from azure.ai.ml import load_job

    job = _built(max_concurrent_trials=3)
    assert type(job).__name__ == "PipelineJob"
    assert job._validate().passed, job._validate().error_messages
    path = tmp_path / "pipeline.yml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(job._to_dict()))))
    again = load_job(path)
    assert again._validate().passed
    sweep, select = again.jobs["fold_models"], again.jobs["select"]
    assert sweep.search_space["fold"].values == list(range(K * K))
    assert sweep.sampling_algorithm == "grid" and sweep.objective.primary_metric == "val_oacc"
    assert sweep.limits.max_total_trials == K * K and sweep.limits.max_concurrent_trials == 3
    assert "--from-mlflow" in select.component.command if hasattr(select, "component") else select.command
    assert job.tags["neurohsi.cv_run"] == "cv-abc"


def test_packaged_yaml_is_the_same_pipeline(packaged):
    assert packaged._validate().passed
    built = _built()
    assert set(packaged.jobs) == set(built.jobs) == {"fold_models", "select"}
    p_sweep, b_sweep = packaged.jobs["fold_models"], built.jobs["fold_models"]
    assert p_sweep.objective.primary_metric == b_sweep.objective.primary_metric == "val_oacc"
    assert " ".join(p_sweep.trial.command.split()) == FOLD_COMMAND
    assert " ".join(packaged.jobs["select"].command.split()) == SELECT_COMMAND
    # no shared mutable folder: the trials' output has no fixed path
    assert getattr(p_sweep.outputs["folds"], "path", None) is None
    folds = int(packaged.inputs["folds"]._data)
    assert p_sweep.search_space["fold"].values == list(range(folds * folds))


def test_held_out_captures_reach_every_trial():
    from remote.training_job import build_parser

    job = build_double_cv_pipeline(_spec(test_capture_ids=("ID0018C01",)), compute="c", environment="azureml:e:1",
                                   dataset_path="azureml://x", cv_run="cv-1")
    argv = _trial_argv(job.jobs["fold_models"].trial.command, dataset=Path("/mnt/ds"), out=Path("/mnt/out"),
                       fold=1, cv_run="cv-1")
    args = build_parser().parse_args(argv[3:])
    assert args.test_capture == ["ID0018C01"] and args.fold == 1


def test_pipeline_refuses_what_it_cannot_run():
    with pytest.raises(JobError, match="cross_validation='double'"):
        build_double_cv_pipeline(_spec(cross_validation="none"), compute="c", environment="azureml:e:1",
                                 dataset_path="azureml://x")
    with pytest.raises(JobError, match="run id"):
        build_double_cv_pipeline(_spec(), compute="c", environment="azureml:e:1", dataset_path="azureml://x",
                                 cv_run="a b'")


def test_azureml_backend_submits_a_pipeline_for_double_cv_and_a_command_job_otherwise():
    from remote.training_backends.azureml import AzureMLBackend

    submitted = []

    class Jobs:
        def create_or_update(self, job):
            submitted.append(job)
            return SimpleNamespace(name=f"job-{len(submitted)}")

    compute = SimpleNamespace(get=lambda name: SimpleNamespace(name=name, max_instances=3))
    backend = AzureMLBackend("sub", "rg", "ws", "cpu-cluster", "azureml:neurohsi-train:2")
    backend._client = SimpleNamespace(jobs=Jobs(), compute=compute)
    assert backend.submit(_spec()) == "job-1"
    assert backend.submit(_spec(cross_validation="none")) == "job-2"
    pipeline, single = submitted
    assert type(pipeline).__name__ == "PipelineJob" and pipeline._validate().passed
    assert pipeline.jobs["fold_models"].limits.max_concurrent_trials == 3  # the cluster's nodes
    assert pipeline.settings.default_compute == "cpu-cluster"
    assert type(single).__name__ == "CommandJob"
