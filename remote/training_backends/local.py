"""Local training backend: the job script in a detached subprocess, state on disk.

``work_dir/<job_id>/`` holds ``spec.json``, ``state.json`` (status, pid, history, the
MLflow ``tracking_uri`` and ``mlflow_run_id``), ``job.log`` (the job's stdout/stderr),
``mlruns/`` (the job's own MLflow file store: per-epoch and final metrics) and the job's
outputs (``progress.jsonl``, ``model.safetensors``, ``metrics.json``). A new ``LocalBackend`` on the same
``work_dir`` (an app restart) sees every job, and finds out when a job's process
vanished without saying goodbye (marked Failed).
"""
from __future__ import annotations

import codecs
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from core.clock import utc_now_stamp
from core.fileio import atomic_write_text
from remote.blob_storage import BlobStorage
from remote.training_backends.base import JobError, JobInfo, JobSpec, JobStatus, audit_spec
from remote.training_backends.job_state import STATE_FILE, init_state, read_state, update_state

LOG_FILE = "job.log"
MLRUNS_DIR = "mlruns"
SPEC_FILE = "spec.json"
OUTPUT_DIR = "output"


class LocalBackend:
    """Runs training jobs on this machine; model and metrics go to ``storage``."""

    name = "local"

    def __init__(self, storage: BlobStorage, work_dir: str | Path, *, cancel_grace_s: float = 3.0) -> None:
        self.storage = storage
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.cancel_grace_s = cancel_grace_s
        self._children: dict[str, subprocess.Popen] = {}  # jobs started by this instance (reaped here)

    # -- paths ---------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not job_id or "/" in job_id or job_id.startswith("."):
            raise JobError(f"invalid job id {job_id!r}")
        path = self.work_dir / job_id
        if not (path / STATE_FILE).is_file():
            raise JobError(f"no local job {job_id!r} in {self.work_dir}")
        return path

    def list_jobs(self) -> list[JobInfo]:
        """Every job in the work dir, newest first."""
        ids = sorted((p.name for p in self.work_dir.iterdir() if (p / STATE_FILE).is_file()), reverse=True)
        return [self.info(job_id) for job_id in ids]

    # -- interface -----------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> str:
        """Check the dataset is uploaded, then start ``remote.training_job`` detached; return the job id."""
        manifest = self.storage.dataset_manifest(spec.dataset)
        have = set(manifest.get("capture_ids", []))
        unknown = sorted((set(spec.train_capture_ids) | set(spec.test_capture_ids)) - have)
        if unknown:
            raise JobError(f"dataset {spec.dataset!r} has no capture(s) {', '.join(unknown)}")
        job_id = f"{utc_now_stamp()}-{secrets.token_hex(3)}"
        jdir = self.work_dir / job_id
        jdir.mkdir(parents=True)
        atomic_write_text(jdir / SPEC_FILE, json.dumps(spec.to_dict(), indent=2))
        state_path = jdir / STATE_FILE
        from remote import tracking

        # The run exists before the job starts, so a poll right after submit finds it (empty).
        tracking_uri = tracking.local_store_uri(jdir / MLRUNS_DIR)
        run_id = tracking.start_run(tracking_uri, run_name=job_id,
                                    tags={"neurohsi.job_id": job_id, "neurohsi.dataset": spec.dataset})
        init_state(state_path, job_id=job_id, backend=self.name, container=self.storage.container_name,
                   tracking_uri=tracking_uri, mlflow_run_id=run_id)
        cmd = [
            sys.executable, "-m", "remote.training_job",
            "--dataset", spec.dataset,
            "--container", self.storage.container_name,
            "--output-dir", str(jdir / OUTPUT_DIR),
            "--state-file", str(state_path),
            "--upload-model",
            "--model-version", job_id,
            "--spec", str(jdir / SPEC_FILE),
        ]
        env = dict(os.environ)
        # The child has no access to this process's keyring session: hand it the
        # connection string through its environment (never on the command line).
        env["NEUROHSI_STORAGE_CONNECTION_STRING"] = self.storage.connection_string_for_child()
        env["PYTHONUNBUFFERED"] = "1"
        env[tracking.TRACKING_URI_ENV], env[tracking.RUN_ID_ENV] = tracking_uri, run_id  # neurohsi train logs there
        with open(jdir / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(jdir),
                start_new_session=True,  # own process group: cancel kills the job and its children
            )
        self._children[job_id] = proc
        update_state(state_path, None, pid=proc.pid, pgid=proc.pid)
        from core.audit.events import record

        record("training_submitted", backend=self.name, job_id=job_id, **audit_spec(spec))
        return job_id

    def status(self, job_id: str) -> JobStatus:
        return self.info(job_id).status

    def info(self, job_id: str) -> JobInfo:
        jdir = self.job_dir(job_id)
        state = self._refresh(jdir)
        try:
            spec = JobSpec.from_dict(json.loads((jdir / SPEC_FILE).read_text()))
        except (OSError, ValueError):
            spec = None
        return JobInfo(
            job_id=job_id,
            backend=self.name,
            status=JobStatus(state["status"]),
            spec=spec,
            created=state.get("created"),
            updated=state.get("updated"),
            message=state.get("message"),
            model=state.get("model"),
        )

    def logs(self, job_id: str, *, tail: int = 200) -> str:
        path = self.job_dir(job_id) / LOG_FILE
        try:
            with open(path, errors="replace") as fh:
                return "".join(deque(fh, maxlen=max(1, tail)))
        except FileNotFoundError:
            return ""

    def follow_logs(self, job_id: str, write, *, poll_s: float = 0.5) -> JobStatus:
        """Pass the log file's new text to ``write`` as the job writes it, until the job ends."""
        path = self.job_dir(job_id) / LOG_FILE
        offset = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
        while True:
            status = self.status(job_id)  # read before the log: what a finished job wrote is then all there
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except FileNotFoundError:
                chunk = b""
            offset += len(chunk)
            text = decoder.decode(chunk, final=status.terminal)
            if text:
                write(text)
            if status.terminal:
                return status
            time.sleep(poll_s)

    def tracking_location(self, job_id: str) -> tuple[str, str] | None:
        """``(tracking_uri, run_id)`` of the job's MLflow run; None for a job from before MLflow."""
        state = read_state(self.job_dir(job_id) / STATE_FILE)
        if state.get("tracking_uri") and state.get("mlflow_run_id"):
            return state["tracking_uri"], state["mlflow_run_id"]
        return None

    def metrics(self, job_id: str) -> list[dict]:
        """Progress events from the job's MLflow run (``remote.tracking.read_run_metrics``);
        a job without one falls back to its ``progress.jsonl``."""
        location = self.tracking_location(job_id)
        if location is not None:
            from remote.tracking import read_run_metrics

            return read_run_metrics(*location)
        from core.training.run import read_progress
        from remote.training_job import PROGRESS_FILE

        return read_progress(self.job_dir(job_id) / OUTPUT_DIR / PROGRESS_FILE)

    def registered_versions(self, name: str | None = None) -> list[dict]:
        """The local registry: models jobs uploaded to storage (``models/<name>/<version>/``), newest
        first, as :func:`remote.training_backends.model_registry.version_row` rows (tags from metrics.json)."""
        from remote.training_backends.model_registry import local_version_row

        rows = []
        for model in self.storage.list_models():
            if name is not None and model.name != name:
                continue
            stored = self.storage.model_metrics(model.name, model.version) if model.has_metrics else None
            rows.append(local_version_row(model, stored))
        return sorted(rows, key=lambda r: r["created"] or "", reverse=True)

    def cancel(self, job_id: str) -> JobStatus:
        """SIGTERM the job's process group, SIGKILL after the grace period; Canceled once it is gone."""
        jdir = self.job_dir(job_id)
        state = self._refresh(jdir)
        if JobStatus(state["status"]).terminal:
            return JobStatus(state["status"])
        update_state(jdir / STATE_FILE, JobStatus.CANCEL_REQUESTED)
        pgid = state.get("pgid")
        if pgid:
            _signal_group(pgid, signal.SIGTERM)
            deadline = time.monotonic() + self.cancel_grace_s
            while time.monotonic() < deadline and self._group_alive(job_id, pgid):
                time.sleep(0.05)
            if self._group_alive(job_id, pgid):
                _signal_group(pgid, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline and self._group_alive(job_id, pgid):
                    time.sleep(0.05)
            proc = self._children.pop(job_id, None)
            if proc is not None:  # the leader may have turned zombie after the last poll: reap it now
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # No-op when the job itself already recorded its end (Canceled, or Completed just before).
        update_state(jdir / STATE_FILE, JobStatus.CANCELED, message="cancelled by user")
        final = read_state(jdir / STATE_FILE)
        _end_run(final, {"Canceled": "KILLED", "Completed": "FINISHED"}.get(final["status"], "FAILED"))
        return JobStatus(final["status"])

    def fetch_model(self, job_id: str, dest: str | Path) -> Path:
        info = self.info(job_id)
        if info.status is not JobStatus.COMPLETED or not info.model:
            raise JobError(f"job {job_id} has no model yet (status {info.status.value})")
        return self.storage.download_model(info.model["name"], info.model["version"], Path(dest))

    def fetch_registered(self, name: str, version: str, dest: str | Path) -> Path:
        """Download model ``name`` v``version`` from the local registry (storage) to ``dest``."""
        return self.storage.download_model(name, str(version), Path(dest))

    # -- process bookkeeping -------------------------------------------------------------

    def _refresh(self, jdir: Path) -> dict:
        """State from disk; a live-status job whose process is gone becomes Failed."""
        state = read_state(jdir / STATE_FILE)
        job_id = jdir.name
        proc = self._children.get(job_id)
        if proc is not None and proc.poll() is not None:
            self._children.pop(job_id, None)  # reaped: no zombie left behind
        if _is_active(state) and state.get("pid") and not self._group_alive(job_id, state["pid"]):
            # The job writes its own final status before exiting; re-read to avoid a race.
            state = read_state(jdir / STATE_FILE)
            if _is_active(state):
                state = update_state(
                    jdir / STATE_FILE, JobStatus.FAILED, message="the job process ended without a final status"
                )
                _end_run(state, "FAILED")
        return state

    def _group_alive(self, job_id: str, pgid: int) -> bool:
        proc = self._children.get(job_id)
        if proc is not None and proc.pid == pgid:
            proc.poll()  # reap the leader if it exited
        return _group_exists(pgid)


def _end_run(state: dict, status: str) -> None:
    """End the job's MLflow run when the job could not (killed, vanished); an ended run keeps its status."""
    if not (state.get("tracking_uri") and state.get("mlflow_run_id")):
        return
    from remote.tracking import TrackingError, end_run

    try:
        end_run(state["tracking_uri"], state["mlflow_run_id"], status)
    except TrackingError:
        pass  # the job's status in state.json is what counts; the run's label is cosmetic


def _is_active(state: dict) -> bool:
    return not JobStatus(state["status"]).terminal


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_exists(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists."""
    proc_root = Path("/proc")
    if proc_root.is_dir():
        for entry in proc_root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the ")" that closes the command name: state, ppid, pgrp, ...
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
