"""Audit entries written where the actions happen: model install / revert, labels saved."""
from __future__ import annotations

import hashlib

import numpy as np

from app.retraining.dialog import install_job, revert_job
from app.retraining.model_history import ModelHistory
from core.audit.events import default_log
from core.labels.store import save_labels
from resources import DEMO_MODEL_PATH


def _run(job):
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return stop.value


def test_model_install_and_revert_are_audited_with_the_sha256(tmp_path):
    history = ModelHistory(tmp_path / "models")
    path, _ = _run(install_job(DEMO_MODEL_PATH, history, "ward-7", "ward 7", None))
    _run(revert_job(history, str(path), ""))
    installed, reverted = [e for e in default_log().entries() if e.event.startswith("model_")]
    assert installed.event == "model_installed" and installed.details["label"] == "ward 7"
    assert installed.details["sha256"] == hashlib.sha256(DEMO_MODEL_PATH.read_bytes()).hexdigest()
    assert reverted.event == "model_reverted" and reverted.details["model"] == "demo"
    assert reverted.details["previous"] == str(path)


def test_saving_labels_is_audited_without_the_labels(tmp_path):
    folder = tmp_path / "ID0001C01"
    folder.mkdir()
    labels = np.zeros((20, 30), np.uint8)
    labels[:5] = 2
    save_labels(folder, labels, author="Dr Label")
    [entry] = [e for e in default_log().entries() if e.event == "labels_saved"]
    assert entry.details["capture"] == "ID0001C01" and entry.details["author"] == "Dr Label"
    assert entry.details["counts"]["2"] == 150 and default_log().verify() == []
