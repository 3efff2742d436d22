"""Local training backend: real subprocess jobs against Azurite, state on disk, cancel without orphans."""
from __future__ import annotations

from core.training.config import TrainingConfig

import json
import os
import subprocess
import sys
import time

import pytest

from remote.blob_storage import BlobStorage
from remote.training_backends import TERMINAL, JobError, JobSpec, JobStatus, LocalBackend
from remote.training_backends.job_state import STATE_FILE, init_state, read_state, update_state
from tests.support.procs import group_stats


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return [pid for pid, state, _cpu in group_stats(pgid) if state != "Z"]


@pytest.fixture
def uploaded(storage_connection_string, container_name, make_dataset):
    storage = BlobStorage(storage_connection_string, container=container_name)
    storage.upload_dataset(make_dataset("ward", patients=("ID18", "ID25", "ID29")))
    return storage


def test_job_runs_to_completion_and_survives_a_backend_restart(uploaded, tmp_path):
    from core.model.files import load_model

    backend = LocalBackend(uploaded, tmp_path / "jobs")
    spec = JobSpec("ward", test_capture_ids=("ID0029C01",), training=TrainingConfig(epochs=2), model_name="w")
    job_id = backend.submit(spec)
    assert backend.status(job_id) in {JobStatus.QUEUED, JobStatus.PREPARING, JobStatus.RUNNING}
    chunks: list[str] = []  # the log followed while the job runs, as `neurohsi cloud logs --follow` does
    assert backend.follow_logs(job_id, chunks.append, poll_s=0.2) is JobStatus.COMPLETED
    assert backend.status(job_id) in TERMINAL
    # the same lines as the whole log (logs() reads in text mode, so a progress bar's \r reads as \n)
    assert "".join(chunks).splitlines() == backend.logs(job_id, tail=10_000).splitlines()
    assert "status: Completed" in chunks[-1]

    # An app restart: a new backend on the same folder knows the job and its outcome.
    again = LocalBackend(uploaded, tmp_path / "jobs")
    info = again.info(job_id)
    assert info.status is JobStatus.COMPLETED, again.logs(job_id)
    assert info.spec == spec
    history = [s for s, _ in read_state(tmp_path / "jobs" / job_id / STATE_FILE)["history"]]
    assert history == ["Queued", "Preparing", "Running", "Finalizing", "Completed"]
    assert [j.job_id for j in again.list_jobs()] == [job_id]

    events = again.metrics(job_id)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["loss"] > 0 for e in epochs)
    assert events[-1]["event"] == "done" and events[-1]["metrics"]["held_out"]["capture_ids"] == ["ID0029C01"]
    assert "status: Completed" in again.logs(job_id, tail=5)

    # The model went to storage with its metrics, and comes back as a loadable model file.
    [model] = [m for m in uploaded.list_models() if m.version == job_id]
    assert model.name == "w" and model.has_metrics
    assert uploaded.model_metrics("w", job_id)["spec"]["test_capture_ids"] == ["ID0029C01"]
    path = again.fetch_model(job_id, tmp_path / "fetched.safetensors")
    loaded = load_model(path)
    assert loaded.info.training["test_ids"] == ["ID0029C01"]
    # The settings the job trained with are the spec.json's, carried as one TrainingConfig.
    assert loaded.info.training["hyper_parameters"] == spec.training.to_dict()


def test_cancel_stops_the_job_and_leaves_no_process(uploaded, tmp_path):
    backend = LocalBackend(uploaded, tmp_path / "jobs")
    job_id = backend.submit(JobSpec("ward", training=TrainingConfig(epochs=5000)))
    # Wait until training itself runs (in the job process: core.training.run, no CLI child).
    wait_for(lambda: any(e["event"] == "epoch" for e in backend.metrics(job_id)), 120, "the first epoch")
    state = read_state(tmp_path / "jobs" / job_id / STATE_FILE)
    pids = group_pids(state["pgid"])
    assert pids == [state["pid"]]  # the job script alone: remote never starts app

    status = backend.cancel(job_id)  # SIGTERM, SIGKILL after the grace period: bounded by construction
    assert status is JobStatus.CANCELED
    assert group_pids(state["pgid"]) == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert LocalBackend(uploaded, tmp_path / "jobs").status(job_id) is JobStatus.CANCELED
    assert backend.cancel(job_id) is JobStatus.CANCELED  # idempotent
    with pytest.raises(JobError, match="no model"):
        backend.fetch_model(job_id, tmp_path / "m.safetensors")


def test_a_job_whose_process_vanished_is_marked_failed(uploaded, tmp_path):
    backend = LocalBackend(uploaded, tmp_path / "jobs")
    jdir = tmp_path / "jobs" / "20200101-000000-dead00"
    jdir.mkdir(parents=True)
    (jdir / "spec.json").write_text(json.dumps(JobSpec("ward").to_dict()))
    gone = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    gone.wait()
    init_state(jdir / STATE_FILE, job_id=jdir.name)
    update_state(jdir / STATE_FILE, JobStatus.RUNNING, pid=gone.pid, pgid=gone.pid)
    info = backend.info(jdir.name)
    assert info.status is JobStatus.FAILED and "ended without a final status" in info.message


def test_terminal_status_is_final(tmp_path):
    path = tmp_path / STATE_FILE
    init_state(path)
    update_state(path, JobStatus.CANCELED)
    update_state(path, JobStatus.FAILED, message="late")
    assert read_state(path)["status"] == "Canceled" and "message" not in read_state(path)


def test_submit_checks_dataset_and_captures(uploaded, tmp_path):
    backend = LocalBackend(uploaded, tmp_path / "jobs")
    with pytest.raises(JobError, match="no capture"):
        backend.submit(JobSpec("ward", test_capture_ids=("ID0099C01",)))
    with pytest.raises(ValueError, match="not found"):
        backend.submit(JobSpec("missing"))
    with pytest.raises(JobError, match="no local job"):
        backend.status("nope")
    assert backend.list_jobs() == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "../x"}, "dataset"),
        ({"model_name": "a b"}, "model_name"),
        ({"training": {"epochs": 3}}, "TrainingConfig"),
        ({"train_capture_ids": ("A",), "test_capture_ids": ("A",)}, "both"),
    ],
)
def test_job_spec_validation(kwargs, match):
    base = {"dataset": "ward", **kwargs}
    with pytest.raises(JobError, match=match):
        JobSpec(**base)


@pytest.mark.parametrize(
    "training, match",
    [({"epochs": 0}, "epochs"), ({"patch_size": 6}, "odd"), ({"lr": 2.0}, "lr"), ({"seed": -1}, "seed"),
     ({"cross_validation": "triple"}, "cross_validation"), ({"epoch": 3}, "unknown training settings")],
)
def test_one_validation_for_the_settings_in_code_and_in_spec_json(tmp_path, training, match):
    """The rules are TrainingConfig's, whether built in code or read from a job's spec.json."""
    with pytest.raises(ValueError, match=match):
        TrainingConfig.from_dict(training)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**JobSpec("ward").to_dict(), "training": training}))
    with pytest.raises(JobError, match=match) as info:
        JobSpec.read(path)
    assert str(path) in str(info.value)


def test_job_spec_round_trip_and_status_vocabulary():
    spec = JobSpec("ward", train_capture_ids=["ID0018C01"], training=TrainingConfig(epochs=3, cross_validation="double"))
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.training.epochs == 3 and JobSpec("x").training == TrainingConfig(cross_validation="double")
    assert JobStatus.parse("completed") is JobStatus.COMPLETED and JobStatus.COMPLETED == "Completed"
    assert JobStatus.parse("Provisioning") is JobStatus.STARTING
    assert {s.value for s in TERMINAL} == {"Completed", "Failed", "Canceled"}
