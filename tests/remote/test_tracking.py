"""One metrics path through MLflow: ``neurohsi train`` logs to a real local file store, the reader
gives back what training reported; a running local job is read while it runs (partial metrics)."""
from __future__ import annotations

from core.training.config import TrainingConfig

import json
import subprocess
import sys
import time

import pytest

from remote import tracking
from remote.blob_storage import BlobStorage
from remote.training_backends import TERMINAL, JobSpec, JobStatus, LocalBackend
from remote.training_backends.job_state import STATE_FILE, read_state
from tests.support.datasets import write_small_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_small_dataset(tmp_path_factory.mktemp("ds"))


def _train(argv, capsys):
    from app.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _only_run(uri: str) -> str:
    client = tracking.mlflow_client(uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    [run] = client.search_runs([experiment.experiment_id])
    return run.info.run_id


def test_train_logs_each_epoch_and_final_metrics_to_mlflow_uri_from_the_environment(
        dataset, tmp_path, capsys, monkeypatch):
    from core.model.files import load_model

    uri = tracking.local_store_uri(tmp_path / "mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # MLflow's own convention
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    model, progress = tmp_path / "m.safetensors", tmp_path / "p.jsonl"
    _train(["train", dataset, "-o", model, "--no-cv", "--epochs", "2", "--seed", "3",
            "--test-capture", "ID0034C03", "--progress-jsonl", progress], capsys)
    run_id = _only_run(uri)
    events = tracking.read_run_metrics(uri, run_id)
    history = [json.loads(line) for line in progress.read_text().splitlines()]
    # per-epoch values equal the training history, in order
    got = [(e["fold"], e["epoch"], e["loss"], e["val_oacc"]) for e in events if e["event"] == "epoch"]
    want = [(e["fold"], e["epoch"], e["loss"], e["val_oacc"]) for e in history if e["event"] == "epoch"]
    assert got == want and len(got) == 2
    assert [e["fraction"] for e in events if e["event"] == "epoch"] == [0.5, 1.0]
    assert events[-1]["event"] == "done"
    assert events[-1]["metrics"] == load_model(model).info.metrics == history[-1]["metrics"]
    run = tracking.mlflow_client(uri).get_run(run_id)
    assert run.info.status == "FINISHED"  # created here, ended here
    assert run.data.params["epochs"] == "2" and run.data.params["seed"] == "3"
    held_out = history[-1]["metrics"]["held_out"]["overall"]["oacc"]
    assert run.data.metrics["final.held_out.overall.oacc"] == pytest.approx(held_out)


def test_double_cv_logs_every_fold_model_under_its_own_key(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    uri = tracking.local_store_uri(tmp_path / "mlruns")
    progress = tmp_path / "p.jsonl"
    _train(["train", dataset, "-o", tmp_path / "m.safetensors", "--epochs", "2", "--folds", "2", "--workers", "1",
            "--mlflow-uri", uri, "--progress-jsonl", progress], capsys)
    events = tracking.read_run_metrics(uri, _only_run(uri))
    history = [json.loads(line) for line in progress.read_text().splitlines() if '"epoch"' in line]
    by_fold = {(e["fold"], e["epoch"]): (e["loss"], e["val_oacc"]) for e in events if e["event"] == "epoch"}
    assert by_fold == {(e["fold"], e["epoch"]): (e["loss"], e["val_oacc"]) for e in history}
    assert sorted({fold for fold, _ in by_fold}) == [0, 1, 2, 3]  # 2 x 2 fold models
    assert events[-1]["event"] == "done" and events[-1]["metrics"]["mode"] == "double-cv"


def test_train_without_a_tracking_uri_does_not_touch_mlflow(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _train(["train", dataset, "-o", tmp_path / "m.safetensors", "--no-cv", "--epochs", "1"], capsys)
    assert not (tmp_path / "mlruns").exists()


def test_cli_paths_that_do_not_train_and_the_dialog_module_do_not_import_mlflow():
    probe = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom app.cli.main import main\nimport app.retraining.dialog, remote.training_backends.local\n"
        "try:\n    main(['cloud', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('mlflow' in sys.modules, 'remote.tracking' in sys.modules)")],
        capture_output=True, text=True, timeout=60, env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert probe.stdout.strip().splitlines()[-1] == "False True", probe.stderr


def test_flatten_numbers_keeps_finite_numbers_with_dotted_keys():
    flat = tracking.flatten_numbers({"oacc": 0.5, "held_out": {"overall": {"oacc": 1, "x": float("nan")}},
                                     "mode": "no-cv", "ok": True, "per class": [1, 2]})
    assert flat == {"oacc": 0.5, "held_out.overall.oacc": 1.0}


def test_a_running_local_job_is_read_through_its_mlflow_run(storage_connection_string, container_name,
                                                             make_dataset, tmp_path):
    storage = BlobStorage(storage_connection_string, container=container_name)
    storage.upload_dataset(make_dataset("ward", patients=("ID18", "ID25", "ID29")))
    backend = LocalBackend(storage, tmp_path / "jobs")
    job_id = backend.submit(JobSpec("ward", test_capture_ids=("ID0029C01",), training=TrainingConfig(epochs=400),
                                    model_name="w"))
    state = read_state(tmp_path / "jobs" / job_id / STATE_FILE)
    assert state["tracking_uri"].startswith("file:") and state["tracking_uri"].endswith("/mlruns")
    assert backend.tracking_location(job_id) == (state["tracking_uri"], state["mlflow_run_id"])
    try:
        deadline = time.monotonic() + 120
        partial = []
        while time.monotonic() < deadline:
            partial = tracking.read_job_metrics(backend, job_id)
            if len([e for e in partial if e["event"] == "epoch"]) >= 3 or backend.status(job_id).terminal:
                break
            time.sleep(0.2)
        assert backend.status(job_id) is JobStatus.RUNNING, backend.logs(job_id)
        epochs = [e for e in partial if e["event"] == "epoch"]
        assert len(epochs) >= 3 and epochs[:3] == [dict(e) for e in epochs[:3]]
        assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
        assert all(e["event"] == "epoch" for e in partial)  # no final metrics while it runs
        assert 0 < epochs[-1]["fraction"] < 1
    finally:
        backend.cancel(job_id)
    assert backend.status(job_id) is JobStatus.CANCELED
    run = tracking.mlflow_client(state["tracking_uri"]).get_run(state["mlflow_run_id"])
    assert run.info.status == "KILLED"  # by the job on SIGTERM, or by the backend after SIGKILL


def test_a_completed_local_job_reports_training_history_and_lists_in_the_local_registry(
        storage_connection_string, container_name, make_dataset, tmp_path):
    storage = BlobStorage(storage_connection_string, container=container_name)
    storage.upload_dataset(make_dataset("ward", patients=("ID18", "ID25", "ID29")))
    backend = LocalBackend(storage, tmp_path / "jobs")
    job_id = backend.submit(JobSpec("ward", test_capture_ids=("ID0029C01",), training=TrainingConfig(epochs=2),
                                    model_name="w"))
    deadline = time.monotonic() + 120
    while backend.status(job_id) not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backend.status(job_id) is JobStatus.COMPLETED, backend.logs(job_id)
    events = tracking.read_job_metrics(backend, job_id)
    stored = storage.model_metrics("w", job_id)
    # the reader's per-epoch values are the job's training history (written from progress.jsonl)
    assert [(e["epoch"], e["loss"]) for e in events if e["event"] == "epoch"] == \
        [(e["epoch"], e["loss"]) for e in stored["history"]]
    assert events[-1] == {"event": "done", "metrics": stored["metrics"]}
    location = backend.tracking_location(job_id)
    assert tracking.mlflow_client(location[0]).get_run(location[1]).info.status == "FINISHED"
    [row] = backend.registered_versions("w")
    assert row["name"] == "w" and row["version"] == job_id
    assert row["profile"] == "synthetic-small" and len(row["dataset_sha256"]) == 64
    assert row["held_out_oacc"] == f"{stored['metrics']['held_out']['overall']['oacc']:.4f}"
    assert backend.registered_versions("other") == []


def test_a_job_from_before_mlflow_falls_back_to_its_progress_file(tmp_path):
    from remote.training_backends.job_state import init_state
    from remote.training_backends.local import OUTPUT_DIR
    from remote.training_job import PROGRESS_FILE

    class NoStorage:
        container_name = "c"

    jdir = tmp_path / "jobs" / "20260101T000000Z-abcdef"
    (jdir / OUTPUT_DIR).mkdir(parents=True)
    init_state(jdir / STATE_FILE, job_id=jdir.name, backend="local")  # no tracking_uri / mlflow_run_id
    written = [{"event": "epoch", "stage": "no-cv", "fold": None, "epoch": 1, "epochs": 1, "loss": 0.7,
                "val_oacc": None, "fraction": 1.0}, {"event": "done", "metrics": {"oacc": 0.5}}]
    (jdir / OUTPUT_DIR / PROGRESS_FILE).write_text("".join(json.dumps(e) + "\n" for e in written))
    backend = LocalBackend(NoStorage(), tmp_path / "jobs")
    assert backend.tracking_location(jdir.name) is None
    assert tracking.read_job_metrics(backend, jdir.name) == written
