"""Training metrics through MLflow: one writer for ``neurohsi train``, one reader for the app and the CLI.

Writer: :class:`MlflowProgress` is a ``core.training.trainer`` progress callback that logs each
epoch's ``loss`` and ``val_oacc`` (step = epoch, 1-based) to an MLflow run; double
cross-validation fold models log under ``fold_<M>.loss`` / ``fold_<M>.val_oacc``
(M = outer * folds + inner, as ``TrainingProgress.fold``) and carry ``neurohsi.folds``
in the run's params. :meth:`MlflowProgress.finish` logs the final metrics: numeric ones
flattened as ``final.<path>``, the whole nested dict as the artifact ``final_metrics.json``.

Reader: :func:`read_run_metrics` turns a run back into the events ``neurohsi train
--progress-jsonl`` writes (``{"event": "epoch", ...}`` per epoch, then ``{"event":
"done", "metrics": {...}}``), so the dialog, ``neurohsi cloud status/logs`` and the
chart read a RUNNING job the same way; :func:`read_job_metrics` picks the run of a job
from its backend (:meth:`tracking_location`) and falls back to ``backend.metrics``; for a
double-cv pipeline (``backend.cv_run_of(job_id)``) it merges its trials' runs
(:func:`read_cv_run_metrics`), so the dialog follows every trial.

Double-cv trials (``neurohsi train --fold M --cv-run R``) log the sweep objective
``val_oacc`` under that exact name, tag their run ``neurohsi.cv_run=R`` and log their fold
files as artifacts; :func:`fetch_cv_trials` gives the selection step every finished trial's files.

MLflow is imported only inside these functions (about 0.8 s), never by core/, the GUI's
start or CLI commands that do not train. Local stores are MLflow's file store
(``file:<dir>/mlruns``), which MLflow 3 allows only with ``MLFLOW_ALLOW_FILE_STORE``;
telemetry is switched off (no network here, and a hospital's data stays in-house).
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import warnings
from pathlib import Path

from core.errors import NeuroHSIError

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"  # MLflow's own convention, honoured by neurohsi train
RUN_ID_ENV = "MLFLOW_RUN_ID"  # set by Azure ML in a job, and by the local backend for its child
EXPERIMENT = "neurohsi-training"
FINAL_ARTIFACT = "final_metrics.json"
FINAL_PREFIX = "final."
FOLDS_PARAM = "neurohsi.folds"
EPOCHS_PARAM = "epochs"
# An Azure ML sweep's objective (double-cv-pipeline.yml, primary_metric) must be logged by each
# trial under exactly this name; fold_<M>.val_oacc or final.val_oacc do not count.
OBJECTIVE_METRIC = "val_oacc"
CV_RUN_TAG = "neurohsi.cv_run"  # the double-cv run a fold trial belongs to (one value per pipeline)
TRIAL_ARTIFACTS = "fold"  # artifact folder of a trial's fold-M.json and fold-M.safetensors
_KEY_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")
_FOLD_KEY = re.compile(r"^fold_(\d+)\.(loss|val_oacc)$")


class TrackingError(NeuroHSIError, RuntimeError):
    """The MLflow store cannot be written or read (one line, no secrets)."""


def local_store_uri(folder: str | Path) -> str:
    """MLflow file-store URI of ``folder`` (created), e.g. ``file:/jobs/<id>/mlruns``."""
    path = Path(folder).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


@contextlib.contextmanager
def _quiet():
    """MLflow's own warnings (deprecations of its dependencies, file-store notices) are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def mlflow_client(tracking_uri: str):
    """``mlflow.tracking.MlflowClient`` for ``tracking_uri``, imported lazily with telemetry off."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if tracking_uri.startswith("file:") or "://" not in tracking_uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    with _quiet():
        try:
            from mlflow.tracking import MlflowClient

            return MlflowClient(tracking_uri=tracking_uri)
        except Exception as exc:  # MlflowException and friends: many kinds, one line
            raise TrackingError(f"MLflow store {tracking_uri!r}: {_line(exc)}") from None


def _line(exc: Exception) -> str:
    from core.errors import one_line

    return one_line(exc)[:300]


def start_run(tracking_uri: str, *, run_name: str | None = None, params: dict | None = None,
              tags: dict | None = None, experiment: str = EXPERIMENT) -> str:
    """Create a run in ``experiment`` (created when missing); return its id."""
    client = mlflow_client(tracking_uri)
    with _quiet():
        try:
            exp = client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment)
            run = client.create_run(exp_id, run_name=run_name, tags={str(k): str(v) for k, v in (tags or {}).items()})
            for key, value in (params or {}).items():
                client.log_param(run.info.run_id, key, value)
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow store {tracking_uri!r}: {_line(exc)}") from None
    return run.info.run_id


def end_run(tracking_uri: str, run_id: str, status: str = "FINISHED") -> None:
    """Mark the run FINISHED / FAILED / KILLED (a run already ended keeps its status)."""
    client = mlflow_client(tracking_uri)
    with _quiet():
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_terminated(run_id, status=status)
        except Exception as exc:
            raise TrackingError(f"MLflow run {run_id}: {_line(exc)}") from None


def flatten_numbers(metrics: dict, prefix: str = "") -> dict[str, float]:
    """Finite numbers of a nested dict as ``a.b.c`` keys MLflow accepts (lists and text dropped)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = _KEY_BAD.sub("_", f"{prefix}{key}")
        if isinstance(value, dict):
            out.update(flatten_numbers(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


class MlflowProgress:
    """``core.training.trainer`` progress callback logging per-epoch metrics to MLflow run ``run_id``.

    Thread-safe: double cross-validation may train fold models on several threads.
    """

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.tracking_uri, self.run_id = tracking_uri, run_id
        self._client = mlflow_client(tracking_uri)
        self._lock = threading.Lock()

    def __call__(self, p) -> None:
        """Log one ``core.training.trainer.TrainingProgress`` (loss, val_oacc at step = epoch)."""
        from mlflow.entities import Metric

        prefix = "" if p.fold is None else f"fold_{p.fold}."
        stamp = _now_ms()
        batch = [Metric(prefix + "loss", float(p.loss), stamp, int(p.epoch))]
        if p.val_oacc is not None:
            batch.append(Metric(prefix + "val_oacc", float(p.val_oacc), stamp, int(p.epoch)))
        with self._lock, _quiet():
            self._client.log_batch(self.run_id, metrics=batch, synchronous=True)

    def log_params(self, params: dict) -> None:
        with self._lock, _quiet():
            for key, value in params.items():
                self._client.log_param(self.run_id, key, value)

    def finish(self, metrics: dict) -> None:
        """Final metrics: numbers as ``final.*`` metrics, the whole dict as ``final_metrics.json``."""
        from mlflow.entities import Metric

        stamp = _now_ms()
        flat = [Metric(FINAL_PREFIX + k, v, stamp, 0) for k, v in flatten_numbers(metrics).items()]
        with self._lock, _quiet():
            for start in range(0, len(flat), 900):  # log_batch takes at most 1000 metrics
                self._client.log_batch(self.run_id, metrics=flat[start:start + 900], synchronous=True)
            self._client.log_dict(self.run_id, metrics, FINAL_ARTIFACT)


    def set_tags(self, tags: dict) -> None:
        with self._lock, _quiet():
            for key, value in tags.items():
                self._client.set_tag(self.run_id, key, str(value))

    def finish_trial(self, summary: dict) -> None:
        """The end of a double-cv fold trial (``core.training.run.train_model_file(fold=M)``'s summary:
        ``val_oacc``, ``test``, ``model``, ``record``): final metrics, then :meth:`log_trial`."""
        self.finish({"val_oacc": summary["val_oacc"], "test": summary["test"]})
        self.log_trial(summary["val_oacc"], [Path(summary["record"]), Path(summary["model"])])

    def log_trial(self, val_oacc: float, files: list[Path]) -> None:
        """A double-cv fold trial's results: the sweep objective under its exact name and ``files``
        (fold-M.json, fold-M.safetensors) as artifacts, so the selection step reads every trial's
        own outputs from MLflow (no folder shared by trials)."""
        from mlflow.entities import Metric

        with self._lock, _quiet():
            self._client.log_batch(self.run_id, metrics=[Metric(OBJECTIVE_METRIC, float(val_oacc), _now_ms(), 0)],
                                   synchronous=True)
            for path in files:
                self._client.log_artifact(self.run_id, str(path), TRIAL_ARTIFACTS)


def fetch_cv_trials(tracking_uri: str, cv_run: str, dest: str | Path) -> list[Path]:
    """Download the fold outputs of every finished trial of double-cv run ``cv_run`` into
    ``dest/<run id>/``; the folders, one per fold model (a trial run twice counts once: its
    latest finished run). ``TrackingError`` when the store cannot be searched or holds none."""
    import json

    client = mlflow_client(tracking_uri)
    dest = Path(dest)
    with _quiet():
        try:
            experiments = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(experiments, filter_string=f"tags.`{CV_RUN_TAG}` = '{_quoted(cv_run)}'",
                                      max_results=1000) if experiments else []
        except Exception as exc:
            raise TrackingError(f"MLflow store {tracking_uri!r}: {_line(exc)}") from None
        latest: dict[int, tuple[int, Path]] = {}
        for run in runs:
            if run.info.status != "FINISHED":
                continue  # a failed or cancelled attempt; its retry is another run
            folder = dest / run.info.run_id
            folder.mkdir(parents=True, exist_ok=True)
            try:
                client.download_artifacts(run.info.run_id, TRIAL_ARTIFACTS, str(folder))
            except Exception as exc:
                raise TrackingError(f"MLflow run {run.info.run_id}: {_line(exc)}") from None
            for record in (folder / TRIAL_ARTIFACTS).glob("fold-*.json"):
                model = int(json.loads(record.read_text())["model"])
                ended = run.info.end_time or 0
                if model not in latest or latest[model][0] < ended:
                    latest[model] = (ended, record.parent)
    if not latest:
        raise TrackingError(f"MLflow store {tracking_uri!r}: no finished trial tagged {CV_RUN_TAG}={cv_run}")
    return [latest[m][1] for m in sorted(latest)]


def _quoted(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:\-]{1,128}", value):
        raise TrackingError(f"double-cv run id must be 1-128 letters, digits or _.:-, got {value[:40]!r}")
    return value


def read_cv_run_metrics(tracking_uri: str, cv_run: str, *, client=None) -> list[dict]:
    """Progress of every trial of double-cv run ``cv_run`` (running ones too) as one event list,
    like :func:`read_run_metrics` of one run training all fold models (trials log ``fold_<M>.*``)."""
    client = client or mlflow_client(tracking_uri)
    with _quiet():
        try:
            experiments = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(experiments, filter_string=f"tags.`{CV_RUN_TAG}` = '{_quoted(cv_run)}'",
                                      max_results=1000) if experiments else []
        except TrackingError:
            raise
        except Exception as exc:
            raise TrackingError(f"MLflow store {tracking_uri!r}: {_line(exc)}") from None
    events: list[dict] = []
    for run in runs:
        # fold_<M>.* per epoch; the trial's unprefixed val_oacc is the sweep objective, not an epoch
        events += [e for e in read_run_metrics(tracking_uri, run.info.run_id, client=client)
                   if e["event"] == "epoch" and e["fold"] is not None]
    events.sort(key=lambda e: (e["fold"] if e["fold"] is not None else -1, e["epoch"]))
    done = sum(1 for e in events)
    folds = max((int(r.data.params.get(FOLDS_PARAM, 0) or 0) for r in runs), default=0)
    epochs = max((int(r.data.params.get(EPOCHS_PARAM, 0) or 0) for r in runs), default=0)
    total = max(1, folds * folds * epochs) if folds and epochs else max(1, done)
    for index, event in enumerate(events, start=1):
        event["fraction"] = min(1.0, index / total)
    return events


class TrainingRun:
    """The MLflow run one training logs to (``neurohsi train`` and the training job alike).

    None unless ``uri`` is given or ``$MLFLOW_TRACKING_URI`` is set. A run named by
    ``$MLFLOW_RUN_ID`` (Azure ML job, local backend job) is continued and left for its owner
    to end; otherwise a run is created here and ended here. ``config``: the
    ``core.training.config.TrainingConfig`` logged as the run's params.
    """

    def __init__(self, uri: str | None, config, *, dataset_name: str, run_name: str, model_name: str,
                 fold: int | None = None, cv_run: str | None = None, environ: dict | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.uri = uri or environ.get(TRACKING_URI_ENV) or None
        self._given_run = environ.get(RUN_ID_ENV) or None
        self.config, self.dataset_name, self.fold, self.cv_run = config, dataset_name, fold, cv_run
        self.run_name, self.model_name = run_name, model_name
        self.run_id: str | None = None
        self.owned = False

    def start(self) -> MlflowProgress | None:
        """The progress logger, or None without a tracking URI."""
        if self.uri is None:
            return None
        params = {**self.config.to_dict(), FOLDS_PARAM: self.config.folds, "dataset": self.dataset_name}
        if self.fold is not None:
            params["fold_model"] = self.fold
        self.run_id = self._given_run
        if self.run_id is None:
            self.run_id = start_run(self.uri, run_name=self.run_name, tags={"neurohsi.model": self.model_name})
            self.owned = True
        logger = MlflowProgress(self.uri, self.run_id)
        logger.log_params(params)
        if self.cv_run:  # a double-cv trial, tagged at the start so its progress is found while it runs
            logger.set_tags({CV_RUN_TAG: self.cv_run})
        return logger

    def end(self, status: str) -> None:
        """End a run made here (FINISHED / FAILED); a no-op the second time or for a continued run."""
        if self.owned and self.run_id is not None:
            end_run(self.uri, self.run_id, status)
            self.owned = False


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def read_run_metrics(tracking_uri: str, run_id: str, *, client=None) -> list[dict]:
    """The run as progress events: per-epoch ``{"event": "epoch", "stage", "fold", "epoch", "epochs",
    "loss", "val_oacc", "fraction"}`` in the order they were logged, then ``{"event": "done",
    "metrics": {...}}`` once the final metrics are there. Works while the run is RUNNING.
    ``client``: an MlflowClient-like reader (``remote.mlflow_rest.MlflowRestClient``) instead of MLflow's."""
    import time

    client = client or mlflow_client(tracking_uri)
    # The file store creates a metric's file before its first line: a read at that moment finds it
    # "malformed". That is a writer mid-write, not a broken run: read again shortly.
    for attempt in range(3):
        with _quiet():
            try:
                run = client.get_run(run_id)
                keys = sorted(run.data.metrics)
                params = run.data.params
                histories = {key: client.get_metric_history(run_id, key) for key in keys
                             if key in ("loss", "val_oacc") or _FOLD_KEY.match(key)}
                break
            except Exception as exc:
                if attempt == 2 or "malformed" not in str(exc):
                    raise TrackingError(f"MLflow run {run_id}: {_line(exc)}") from None
        time.sleep(0.05)
    epochs = int(params.get(EPOCHS_PARAM, 0) or 0)
    folds = int(params.get(FOLDS_PARAM, 0) or 0)
    rows: dict[tuple[int | None, int], dict] = {}
    for key, history in histories.items():
        match = _FOLD_KEY.match(key)
        fold, name = (int(match.group(1)), match.group(2)) if match else (None, key)
        for m in history:
            row = rows.setdefault((fold, int(m.step)), {"fold": fold, "epoch": int(m.step), "t": m.timestamp,
                                                        "loss": None, "val_oacc": None})
            row[name] = m.value
            row["t"] = min(row["t"], m.timestamp)
    ordered = sorted(rows.values(), key=lambda r: (r["t"], -1 if r["fold"] is None else r["fold"], r["epoch"]))
    n_models = folds * folds if any(r["fold"] is not None for r in ordered) and folds else 1
    total = max(1, epochs * n_models) if epochs else max(1, len(ordered))
    events: list[dict] = []
    for index, row in enumerate(ordered, start=1):
        events.append({"event": "epoch", "stage": "no-cv" if row["fold"] is None else "double-cv",
                       "fold": row["fold"], "epoch": row["epoch"], "epochs": epochs or None,
                       "loss": row["loss"], "val_oacc": row["val_oacc"], "fraction": min(1.0, index / total)})
    final = _final_metrics(client, run_id, run.info.artifact_uri)
    if final is not None:
        events.append({"event": "done", "metrics": final})
    return events


def _final_metrics(client, run_id: str, artifact_uri: str | None) -> dict | None:
    import json

    if artifact_uri and artifact_uri.startswith("file:"):  # a local store: read the file, no download step
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(artifact_uri).path)) / FINAL_ARTIFACT
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    with _quiet():
        try:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                local = client.download_artifacts(run_id, FINAL_ARTIFACT, tmp)
                return json.loads(Path(local).read_text())
        except Exception:  # not logged yet (a running job), or no artifact store access
            return None


def read_job_metrics(backend, job_id: str) -> list[dict]:
    """One reader for every job: the job's MLflow run when its backend names one
    (``backend.tracking_location(job_id) -> (tracking_uri, run_id) | None``), else
    ``backend.metrics(job_id)`` (e.g. an Azure ML job without the azureml-mlflow plugin)."""
    locate = getattr(backend, "tracking_location", None)
    location = locate(job_id) if callable(locate) else None
    client = None
    if location is None:  # no MLflow plugin for the workspace: its REST API with the user's token, if offered
        rest = getattr(backend, "mlflow_rest_client", None)
        try:
            client = rest() if callable(rest) else None
        except Exception:  # NeuroHSIError and SDK errors alike: backend.metrics says what is wrong, in its words
            client = None
        if client is None:
            return backend.metrics(job_id)
        location = (client.base_url, job_id)  # an Azure ML job's MLflow run id is the job name
    cv_run_of = getattr(backend, "cv_run_of", None)
    cv_run = cv_run_of(job_id) if callable(cv_run_of) else None
    if cv_run:  # a double-cv pipeline: its trials' runs hold the progress
        return read_cv_run_metrics(location[0], cv_run, client=client)
    return read_run_metrics(*location, client=client)


def azureml_plugin_available() -> bool:
    """True when ``azureml-mlflow`` is importable (it registers the ``azureml://`` tracking scheme)."""
    import importlib.util

    try:
        return importlib.util.find_spec("azureml.mlflow") is not None
    except ImportError:  # no "azureml" namespace at all
        return False
