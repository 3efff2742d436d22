"""Audit entries of the remote side: dataset uploaded (Azurite) and training submitted (local backend)."""
from __future__ import annotations

from core.audit.events import default_log
from remote.blob_storage import BlobStorage
from core.training.config import TrainingConfig
from remote.training_backends.base import JobSpec
from remote.training_backends.local import LocalBackend


def test_upload_and_submit_are_audited(storage_connection_string, container_name, make_dataset, tmp_path):
    storage = BlobStorage(storage_connection_string, container=container_name)
    storage.upload_dataset(make_dataset("ward", patients=("ID18", "ID20")))
    backend = LocalBackend(storage, tmp_path / "jobs")
    job_id = backend.submit(JobSpec("ward", training=TrainingConfig(epochs=1, cross_validation="none", lr=0.002)))
    backend.cancel(job_id)  # the entry is about the submission; the run itself is not needed
    events = {e.event: e.details for e in default_log().entries()}
    assert events["dataset_uploaded"]["dataset"] == "ward" and events["dataset_uploaded"]["captures"] == 2
    submitted = events["training_submitted"]
    assert submitted["job_id"] == job_id and submitted["backend"] == "local" and submitted["training"]["lr"] == 0.002
    assert submitted["dataset"] == "ward" and default_log().verify() == []
