"""Azure ML training backend: double cross-validation as a pipeline (one sweep trial per fold
model, then the selection: :mod:`remote.training_backends.azureml_pipeline`), one model as a
command job on a compute cluster running the same job script.

The job entity is built by a pure function (:func:`build_command_job`) so it can be
validated offline with the SDK's own schema; :class:`AzureMLBackend` is a thin layer
of ``MLClient`` calls (submit, status, logs, cancel, download) that needs a real
workspace (see docs/cloud.md).

On the cluster the command is ``python -m remote.training_job --dataset-dir <mount>``:
the uploaded dataset (``datasets/<name>/`` in the workspace's blob datastore) is a
``uri_folder`` input mounted read-only, the model folder is a ``custom_model`` output.
"""
from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path

from remote.credentials import redact
from remote.training_backends.base import TRAINING_FIELDS, JobError, JobInfo, JobSpec, JobStatus

DEFAULT_DATASTORE = "neurohsi"
DEFAULT_EXPERIMENT = "neurohsi-training"

# Hyper-parameters become typed job inputs (visible and editable in Azure ML studio,
# like the thesis's script arguments; the job script builds the JobSpec from them, whose
# TrainingConfig validates them); capture lists are plain flags in the command.
_HYPER_INPUTS = (
    ("epochs", "--epochs"),
    ("batch_size", "--batch-size"),
    ("patch_size", "--patch-size"),
    ("folds", "--folds"),
    ("lr", "--lr"),
    ("cross_validation", "--cross-validation"),
    ("seed", "--seed"),
    ("model_kind", "--model-kind"),
    ("balance", "--balance"),
    ("model_name", "--model-name"),
    ("model_version", "--version"),
)


def dataset_uri(dataset: str, datastore: str = DEFAULT_DATASTORE) -> str:
    """``azureml://`` URI of an uploaded dataset folder in the workspace datastore."""
    return f"azureml://datastores/{datastore}/paths/datasets/{dataset}/"


def job_command(spec: JobSpec) -> str:
    """The command line the cluster runs, with ``${{inputs.*}}`` / ``${{outputs.*}}`` bindings."""
    parts = [
        "python -m remote.training_job",
        "--dataset-dir ${{inputs.dataset}}",
        "--output-dir ${{outputs.model}}",
    ]
    parts += [f"{flag} ${{{{inputs.{name}}}}}" for name, flag in _HYPER_INPUTS]
    parts += [f"--train-capture {cid}" for cid in spec.train_capture_ids]
    parts += [f"--test-capture {cid}" for cid in spec.test_capture_ids]
    return " ".join(parts)


def build_command_job(
    spec: JobSpec,
    *,
    compute: str,
    environment: str,
    datastore: str = DEFAULT_DATASTORE,
    dataset_path: str | None = None,
    code: str | Path | None = None,
    experiment_name: str = DEFAULT_EXPERIMENT,
):
    """The azure-ai-ml ``CommandJob`` for ``spec``.

    ``environment`` is a registered environment (``azureml:NAME@latest``,
    ``azureml:NAME:VERSION``, or the same without ``azureml:``) or a Docker image
    reference with a registry path (wrapped in an anonymous ``Environment``). ``dataset_path`` overrides
    the datastore URI (e.g. a local folder for tests, or a registered data asset
    ``azureml:<name>:<version>``). ``code`` uploads a source snapshot; leave it None
    when the environment image has NeuroHSI installed.
    """
    from azure.ai.ml import Input, Output
    from azure.ai.ml.entities import CommandJob, Environment

    if not compute or not isinstance(compute, str):
        raise JobError("Azure ML compute cluster name is required")
    if not environment or not isinstance(environment, str):
        raise JobError("Azure ML environment is required (azureml:<name>:<version> or an image)")
    from remote.cloud_config import CloudConfigError, environment_reference

    try:
        reference = environment_reference(environment)
    except CloudConfigError as exc:
        raise JobError(str(exc)) from None
    # azureml:NAME@latest / azureml:NAME:VERSION is a registered environment; anything else an image
    env = reference if reference.startswith("azureml:") else Environment(image=reference)
    inputs = {
        "dataset": Input(
            type="uri_folder", path=dataset_path or dataset_uri(spec.dataset, datastore), mode="ro_mount"
        ),
    }
    for name, _ in _HYPER_INPUTS:
        inputs[name] = getattr(spec.training if name in TRAINING_FIELDS else spec, name)
    # CommandJob (not the command() builder, which makes a pipeline node) is what
    # load_job() returns for a command YAML, so the offline round trip is like for like.
    return CommandJob(
        command=job_command(spec),
        inputs=inputs,
        outputs={"model": Output(type="custom_model")},
        environment=env,
        compute=compute,
        code=None if code is None else str(code),
        experiment_name=experiment_name,
        display_name=f"{spec.model_name} on {spec.dataset}",
        description="NeuroHSI Conv2DNet training (remote.training_job)",
        tags={"neurohsi.dataset": spec.dataset, "neurohsi.model": spec.model_name},
        environment_variables={"PYTHONUNBUFFERED": "1"},
    )


class AzureMLBackend:
    """Training on an Azure ML workspace (needs network access to Azure; not exercised by tests).

    Authentication: ``credential`` (the technician's browser sign-in with NeuroHSI's app
    registration, :func:`remote.cloud_config.browser_credential`), else azure-identity's
    DefaultAzureCredential (the managed identity in the cloud, Azure CLI login on a developer's
    machine). No service-principal secret sits on a workstation (docs/deploy.md).
    """

    name = "azureml"

    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        workspace: str,
        compute: str,
        environment: str,
        *,
        datastore: str = DEFAULT_DATASTORE,
        credential=None,
    ) -> None:
        for what, value in (
            ("subscription id", subscription_id),
            ("resource group", resource_group),
            ("workspace", workspace),
            ("compute", compute),
            ("environment", environment),
        ):
            if not value:
                raise JobError(f"Azure ML {what} is required")
        self.subscription_id, self.resource_group, self.workspace = subscription_id, resource_group, workspace
        self.compute, self.environment, self.datastore = compute, environment, datastore
        self._credential = credential
        self._client = None

    def _ml_client(self):
        if self._client is None:
            from azure.ai.ml import MLClient

            credential = self._credential
            if credential is None:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._credential = credential  # also signs the workspace MLflow REST reader in
            self._client = MLClient(credential, self.subscription_id, self.resource_group, self.workspace)
        return self._client

    def _call(self, doing: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except JobError:
            raise
        except Exception as exc:  # SDK errors are many and long: one redacted line
            text = " ".join(str(exc).split())[:300] or exc.__class__.__name__
            raise JobError(f"Azure ML {doing} failed: {redact(text)}") from None

    def check(self) -> None:
        """The workspace answers and has the compute cluster and the registered environment (JobError if not)."""
        client = self._ml_client()
        self._call("workspace lookup", client.workspaces.get, self.workspace)
        self._call("compute lookup", client.compute.get, self.compute)
        from remote.cloud_config import environment_reference

        reference = environment_reference(self.environment)
        if reference.startswith("azureml:"):
            name = reference.removeprefix("azureml:")
            if "@" in name:
                name, label = name.split("@", 1)
                self._call("environment lookup", client.environments.get, name, label=label)
            else:
                name, version = name.split(":", 1)
                self._call("environment lookup", client.environments.get, name, version=version)

    def submit(self, spec: JobSpec) -> str:
        """Double cross-validation: the pipeline (one sweep trial per fold model across the cluster,
        then the selection; :mod:`remote.training_backends.azureml_pipeline`); else one command job."""
        if spec.training.cross_validation == "double":
            job = self.build_pipeline(spec)
        else:
            job = build_command_job(spec, compute=self.compute, environment=self.environment, datastore=self.datastore)
        created = self._call("submit", self._ml_client().jobs.create_or_update, job)
        from core.audit.events import record
        from remote.training_backends.base import audit_spec

        record("training_submitted", backend=self.name, job_id=created.name, **audit_spec(spec))
        return created.name

    def build_pipeline(self, spec: JobSpec, *, max_concurrent_trials: int | None = None):
        """The double-cv ``PipelineJob`` for ``spec``; trials at once = the cluster's node count when
        it can be read (``max_instances``), else 5."""
        from remote.cloud_config import CloudConfigError, environment_reference
        from remote.training_backends.azureml_pipeline import build_double_cv_pipeline

        try:
            reference = environment_reference(self.environment)
        except CloudConfigError as exc:
            raise JobError(str(exc)) from None
        if max_concurrent_trials is None:
            cluster = self._call("compute lookup", self._ml_client().compute.get, self.compute)
            max_concurrent_trials = int(getattr(cluster, "max_instances", None) or 5)
        from azure.ai.ml.entities import Environment

        env = reference if reference.startswith("azureml:") else Environment(image=reference)
        return build_double_cv_pipeline(
            spec, compute=self.compute, environment=env, dataset_path=dataset_uri(spec.dataset, self.datastore),
            max_concurrent_trials=max_concurrent_trials,
        )

    def cv_run_of(self, job_id: str) -> str | None:
        """The ``neurohsi.cv_run`` tag of a double-cv pipeline job (its trials carry it in MLflow)."""
        job = self._call("status", self._ml_client().jobs.get, job_id)
        return (getattr(job, "tags", None) or {}).get("neurohsi.cv_run")

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.parse(self._call("status", self._ml_client().jobs.get, job_id).status)

    def info(self, job_id: str) -> JobInfo:
        job = self._call("status", self._ml_client().jobs.get, job_id)
        created = getattr(getattr(job, "creation_context", None), "created_at", None)
        return JobInfo(
            job_id=job_id,
            backend=self.name,
            status=JobStatus.parse(job.status),
            spec=None,
            created=None if created is None else str(created),
            message=None,
            model={"output": "model"} if JobStatus.parse(job.status) is JobStatus.COMPLETED else None,
        )

    def _running(self, job_id: str):
        """The job entity when it has not ended (its outputs cannot be downloaded yet), else None."""
        job = self._call("status", self._ml_client().jobs.get, job_id)
        return None if JobStatus.parse(job.status).terminal else job

    def follow_logs(self, job_id: str, write, *, poll_s: float = 0.5) -> JobStatus:
        """Azure ML's own live log stream (``jobs.stream``) until the job ends; the SDK prints it to
        stdout itself, so ``write`` only gets the closing line."""
        self._call("log stream", self._ml_client().jobs.stream, job_id)
        status = self.status(job_id)
        write(f"job {job_id}: {status.value}\n")
        return status

    def logs(self, job_id: str, *, tail: int = 200) -> str:
        running = self._running(job_id)
        if running is not None:  # jobs.download refuses an unfinished job: say where the live log is
            url = getattr(running, "studio_url", None)
            return (f"The job is {running.status}; its log comes here when it ends"
                    + (f" (live log: {url})" if url else "") + "\n")
        with tempfile.TemporaryDirectory() as tmp:
            self._call("logs download", self._ml_client().jobs.download, job_id, download_path=tmp, all=False)
            logs = sorted(Path(tmp).rglob("std_log*.txt"))
            if not logs:
                return ""
            with open(logs[-1], errors="replace") as fh:
                return "".join(deque(fh, maxlen=max(1, tail)))

    def tracking_location(self, job_id: str) -> tuple[str, str] | None:
        """``(workspace MLflow tracking URI, run id)`` of the job when the azureml-mlflow plugin is
        importable (an Azure ML job's MLflow run id is the job name); None otherwise, and
        :func:`remote.tracking.read_job_metrics` falls back to :meth:`metrics`."""
        from remote.tracking import azureml_plugin_available

        if not azureml_plugin_available():
            return None
        workspace = self._call("workspace lookup", self._ml_client().workspaces.get, self.workspace)
        uri = getattr(workspace, "mlflow_tracking_uri", None)
        return (uri, job_id) if uri else None

    def mlflow_rest_client(self):
        """The workspace's MLflow REST API with this backend's sign-in (live metrics without
        azureml-mlflow: :mod:`remote.mlflow_rest`); None when the workspace names no tracking URI."""
        from remote.endpoint_auth import EntraTokenAuth
        from remote.mlflow_rest import ARM_SCOPE, MlflowRestClient

        workspace = self._call("workspace lookup", self._ml_client().workspaces.get, self.workspace)
        uri = getattr(workspace, "mlflow_tracking_uri", None)
        if not uri:
            return None
        return MlflowRestClient(uri, EntraTokenAuth(self._credential, scope=ARM_SCOPE))

    def metrics(self, job_id: str) -> list[dict]:
        from core.training.run import read_progress
        from remote.training_job import PROGRESS_FILE

        if self._running(job_id) is not None:
            return []  # outputs of a running job cannot be downloaded; progress shows once it ends
        with tempfile.TemporaryDirectory() as tmp:
            self._call(
                "output download", self._ml_client().jobs.download, job_id, download_path=tmp, output_name="model"
            )
            found = sorted(Path(tmp).rglob(PROGRESS_FILE))
            return read_progress(found[0]) if found else []

    def cancel(self, job_id: str) -> JobStatus:
        self._call("cancel", self._ml_client().jobs.begin_cancel, job_id)
        return JobStatus.CANCEL_REQUESTED

    # -- model registry (remote.training_backends.model_registry) -----------------------------------
    def register_model(self, job_id: str, info) -> dict:
        """Register job ``job_id``'s model output as ``info.name`` v``info.version``, tagged; its registry row."""
        from remote.training_backends.model_registry import model_entity, version_row

        return version_row(self._call("model registration", self._ml_client().models.create_or_update,
                                      model_entity(info, job_id)))

    def registered_versions(self, name: str | None = None) -> list[dict]:
        """Registered versions of model ``name`` (None: of every NeuroHSI model in the workspace), newest first."""
        from remote.training_backends.model_registry import TAG_PREFIX, version_row

        models = self._ml_client().models
        if name is None:  # models.list() without a name gives each model's latest version: keep ours
            names = sorted({m.name for m in self._call("model listing", models.list)
                            if any(str(k).startswith(TAG_PREFIX) for k in (getattr(m, "tags", None) or {}))})
            return [row for n in names for row in self.registered_versions(n)]
        rows = [version_row(m) for m in self._call("model listing", models.list, name=name)]
        return sorted(rows, key=lambda r: (len(r["version"]), r["version"]), reverse=True)

    def fetch_registered(self, name: str, version: str, dest: str | Path) -> Path:
        """Download registered model ``name`` v``version``; the path of its model.safetensors in ``dest``."""
        return self._download_model(
            lambda tmp: self._ml_client().models.download(name=name, version=str(version), download_path=tmp),
            dest, f"{name}-v{version}.safetensors", f"registered model {name}:{version}",
        )

    def fetch_model(self, job_id: str, dest: str | Path) -> Path:
        return self._download_model(
            lambda tmp: self._ml_client().jobs.download(job_id, download_path=tmp, output_name="model"),
            dest, f"{job_id}.safetensors", f"Azure ML job {job_id}'s 'model' output",
        )

    def _download_model(self, download, dest: str | Path, file_name: str, what: str) -> Path:
        """``download(tmp_folder)``, then copy the model file it brought to ``dest`` (a file, or a folder
        that gets ``file_name``); ``JobError`` naming ``what`` when there is none."""
        import shutil

        from remote.training_job import MODEL_FILE

        dest = Path(dest)
        with tempfile.TemporaryDirectory() as tmp:
            self._call("model download", download, tmp)
            found = sorted(Path(tmp).rglob(MODEL_FILE))
            if not found:
                raise JobError(f"{what} holds no {MODEL_FILE}")
            if dest.is_dir():
                dest = dest / file_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found[0], dest)
        return dest
