"""Audit entries written where the actions happen: model install / revert, labels saved."""
from __future__ import annotations

import hashlib

import numpy as np

from core.audit.events import default_log
from core.model.installed import ModelStore
from core.labels.store import save_labels
from resources import DEMO_MODEL_PATH


def test_model_install_and_revert_are_audited_with_the_sha256(tmp_path):
    store = ModelStore(tmp_path / "models")
    entry = store.install(DEMO_MODEL_PATH, name="ward-7")
    store.revert()
    installed, reverted = [e for e in default_log().entries() if e.event.startswith("model_")]
    assert installed.event == "model_installed" and installed.details["label"] == entry.label
    assert installed.details["model"] == entry.path
    assert installed.details["sha256"] == hashlib.sha256(DEMO_MODEL_PATH.read_bytes()).hexdigest()
    assert reverted.event == "model_reverted" and reverted.details["model"] == "demo"
    assert reverted.details["previous"] == entry.path


def test_saving_labels_is_audited_without_the_labels(tmp_path):
    folder = tmp_path / "ID0001C01"
    folder.mkdir()
    labels = np.zeros((20, 30), np.uint8)
    labels[:5] = 2
    save_labels(folder, labels, author="Dr Label")
    [entry] = [e for e in default_log().entries() if e.event == "labels_saved"]
    assert entry.details["capture"] == "ID0001C01" and entry.details["author"] == "Dr Label"
    assert entry.details["counts"]["2"] == 150 and default_log().verify() == []
