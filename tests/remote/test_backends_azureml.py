"""The Azure ML command job built from a JobSpec validates offline with the SDK's own schema."""
from __future__ import annotations

from core.training.config import TrainingConfig

import json
from pathlib import Path

import pytest
import yaml

from remote.training_backends.azureml import AzureMLBackend, build_command_job, dataset_uri, job_command
from remote.training_backends.base import JobError, JobSpec
from remote.training_job import build_parser

ROOT = Path(__file__).resolve().parents[2]

# azure-ai-ml's own schema code warns about marshmallow 4; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"
)


@pytest.fixture(scope="module")
def load_job():
    from azure.ai.ml import load_job

    return load_job


def plain(entity) -> dict:
    """The entity's dict (OrderedDicts inside) as plain JSON types, ready for YAML."""
    return json.loads(json.dumps(entity._to_dict()))


def spec(*, cross_validation="double", seed=0, **kw):
    base = dict(dataset="ward7", test_capture_ids=("ID0018C01",), model_name="conv2dnet-w7",
                training=TrainingConfig(epochs=40, lr=5e-4, cross_validation=cross_validation, seed=seed))
    base.update(kw)
    return JobSpec(**base)


def test_job_entity_round_trips_through_the_sdk_schema(tmp_path, load_job):
    job = build_command_job(spec(), compute="gpu-cluster", environment="azureml:neurohsi-train:1")
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(plain(job)))
    loaded = load_job(path)  # raises marshmallow.ValidationError on any schema problem
    assert loaded.type == "command"
    assert loaded.compute.removeprefix("azureml:") == "gpu-cluster"
    assert loaded.environment.removeprefix("azureml:") == "neurohsi-train:1"
    assert loaded.inputs["dataset"].type == "uri_folder"
    assert loaded.inputs["dataset"].path == "azureml://datastores/neurohsi/paths/datasets/ward7/"
    assert loaded.outputs["model"].type == "custom_model"
    inputs = plain(loaded)["inputs"]
    assert inputs["epochs"] == 40 and inputs["lr"] == 5e-4 and inputs["cross_validation"] == "double"
    assert "--test-capture ID0018C01" in loaded.command


def test_image_environment_is_wrapped(tmp_path, load_job):
    job = build_command_job(spec(), compute="cpu", environment="myregistry.azurecr.io/neurohsi-train:0.1")
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(plain(job)))
    assert load_job(path).environment.image == "myregistry.azurecr.io/neurohsi-train:0.1"


def test_bad_yaml_is_rejected_by_the_same_loader(tmp_path, load_job):
    from marshmallow import ValidationError

    job = build_command_job(spec(), compute="gpu-cluster", environment="azureml:neurohsi-train:1")
    data = plain(job)
    data["environment"] = "python:3.11"  # a bare image string is not a valid job environment
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValidationError):
        load_job(path)


def test_command_is_what_the_job_script_parses():
    """Substituting the inputs gives a command line remote.training_job accepts with the spec's values."""
    import re

    from remote.training_job import spec_from_args

    training = TrainingConfig(epochs=40, lr=5e-4, cross_validation="none", seed=3, model_kind="spectral",
                              balance="loss")
    s = spec(train_capture_ids=("ID0020C01", "ID0025C01"), training=training)
    line = job_command(s).replace("${{inputs.dataset}}", "/mnt/ds").replace("${{outputs.model}}", "/mnt/out")
    job = build_command_job(s, compute="c", environment="azureml:e:1")
    # Every input the command names is one the job carries, substituted as Azure ML does.
    line = re.sub(r"\$\{\{inputs\.(\w+)\}\}", lambda m: str(job.inputs[m.group(1)]), line)
    assert "${{" not in line
    argv = line.split()
    assert argv[:3] == ["python", "-m", "remote.training_job"]
    args = build_parser().parse_args(argv[3:])
    assert args.dataset_dir == Path("/mnt/ds") and args.output_dir == Path("/mnt/out")
    assert (args.epochs, args.lr, args.cross_validation, args.seed) == (40, 5e-4, "none", 3)
    assert args.train_capture == ["ID0020C01", "ID0025C01"] and args.test_capture == ["ID0018C01"]
    # The cluster trains what the technician chose: the whole TrainingConfig, model kind and balance included.
    assert spec_from_args(args, "ward7").training == training


def test_packaged_job_yaml_validates(load_job):
    job = load_job(ROOT / "packaging" / "azureml" / "train-job.yml")
    assert job.inputs["dataset"].type == "uri_folder"
    assert job.outputs["model"].type == "custom_model"
    assert job.command.startswith("python -m remote.training_job --dataset-dir ${{inputs.dataset}}")
    # The packaged YAML and the builder agree on the hyper-parameter inputs.
    built = build_command_job(spec(), compute="c", environment="azureml:e:1")
    assert set(job.inputs) == set(built.inputs)


def test_packaged_environment_yaml_validates():
    from azure.ai.ml import load_environment

    env = load_environment(ROOT / "packaging" / "azureml" / "train-environment.yml")
    assert env.name == "neurohsi-train"
    assert (ROOT / "packaging" / "azureml" / "Dockerfile.train").is_file()


def test_dataset_uri_and_required_settings():
    assert dataset_uri("ds", "store") == "azureml://datastores/store/paths/datasets/ds/"
    with pytest.raises(JobError, match="compute"):
        build_command_job(spec(), compute="", environment="azureml:e:1")
    with pytest.raises(JobError, match="workspace"):
        AzureMLBackend("sub", "rg", "", "gpu", "azureml:e:1")


def test_double_cv_pipeline_yaml_validates_and_runs_one_trial_per_fold_model(load_job):
    """The sweep + selection pipeline loads and validates offline; its trial command is what the job script parses."""
    job = load_job(ROOT / "packaging" / "azureml" / "double-cv-pipeline.yml")
    assert job._validate().passed
    sweep, select = job.jobs["fold_models"], job.jobs["select"]
    folds = int(job.inputs["folds"]._data)
    assert sweep.search_space["fold"].values == list(range(folds * folds))  # every fold model, once
    assert sweep.sampling_algorithm == "grid" and sweep.limits.max_total_trials == folds * folds
    assert 1 <= sweep.limits.max_concurrent_trials <= folds * folds
    # the selection waits for the sweep and reads every trial's own files from MLflow (no shared folder)
    assert select.inputs["after_trials"]._data == "${{parent.jobs.fold_models.outputs.folds}}"
    assert "python -m remote.training_select --from-mlflow ${{inputs.cv_run}}" in select.command
    line = sweep.trial.command
    for name, value in (("dataset", "/mnt/ds"), ("fold", "7"), ("epochs", "3"), ("batch_size", "16"),
                        ("patch_size", "7"), ("folds", "5"), ("lr", "0.001"), ("seed", "0"),
                        ("model_kind", "spectral"), ("balance", "loss"),
                        ("model_name", "conv2dnet"), ("model_version", "4"), ("cv_run", "cv-1")):
        line = line.replace(f"${{{{inputs.{name}}}}}", value)
    line = line.replace("${{outputs.folds}}", "/mnt/out")
    assert "${{" not in line  # every input the trial names is one the test gives
    argv = line.split()
    args = build_parser().parse_args(argv[3:])
    assert (args.fold, args.cross_validation, args.version, args.cv_run) == (7, "double", "4", "cv-1")
    assert (args.model_kind, args.balance) == ("spectral", "loss")  # the chosen model reaches every trial
    assert {"model_kind", "balance"} <= set(job.inputs)  # and the packaged pipeline carries them
    assert args.dataset_dir == Path("/mnt/ds") and not args.skip_manifest_check


def test_a_running_job_is_watchable_not_failed():
    """jobs.download refuses unfinished jobs: logs/metrics of a running job answer instead of failing.

    Azure ML itself cannot run here, so a stand-in client answers jobs.get like the SDK
    (an object with .status and .studio_url) and fails jobs.download as the service does.
    """
    from types import SimpleNamespace

    class Jobs:
        status = "Running"

        def get(self, name):
            return SimpleNamespace(status=self.status, studio_url=f"https://ml.azure.com/runs/{name}")

        def download(self, *args, **kwargs):
            raise RuntimeError("This job is not in a terminal state")

    backend = AzureMLBackend("sub", "rg", "ws", "cpu", "neurohsi-train@latest")
    backend._client = SimpleNamespace(jobs=Jobs())
    assert backend.metrics("job1") == []
    assert "Running" in backend.logs("job1") and "https://ml.azure.com/runs/job1" in backend.logs("job1")
    backend._client.jobs.status = "Completed"  # finished: the download is tried, and its failure reported
    with pytest.raises(JobError, match="Azure ML logs download failed"):
        backend.logs("job1")
