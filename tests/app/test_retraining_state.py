"""Retraining state without a dialog: dataset scan, roles, job spec, model install, time estimate."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.retraining.run_snapshot import RunSnapshot
from app.retraining.state import RetrainingState, flat_metrics, scan_dataset
from core.errors import DatasetError
from core.labels.store import save_labels


def fake_capture(root, cid, labels=None, *, frames=("raw", "dark", "white")):
    folder = root / cid
    folder.mkdir(parents=True)
    for f in frames:
        (folder / f"{f}.tif").write_bytes(b"x")
    if labels is not None:
        save_labels(folder, labels, author="t")
    return folder


def test_scan_roles_and_labels_check(tmp_path):
    a = np.zeros((4, 5), np.uint8)
    a[0, :3] = 2
    a[1, :] = 5
    fake_capture(tmp_path, "ID0001C01", a)
    fake_capture(tmp_path, "ID0002C01", np.zeros((4, 5), np.uint8))
    fake_capture(tmp_path, "ID0003C01", a, frames=("raw",))
    (tmp_path / "notes").mkdir()
    rows = scan_dataset(tmp_path)
    assert [r.capture_id for r in rows] == ["ID0001C01", "ID0002C01", "ID0003C01"]
    assert rows[0].counts == {1: 0, 2: 3, 3: 0, 4: 0, 5: 5} and rows[0].labelled
    assert not rows[1].labelled and rows[2].problem == "missing dark.tif, white.tif"
    state = RetrainingState()
    state.load_dataset(tmp_path)
    assert state.train_ids == {"ID0001C01"}
    assert state.labels_check().ok
    assert state.train_counts()[5] == 5
    assert len(state.class_warnings(minimum=4)) == 4  # classes 1, 3, 4 (none) and 2 (3 px)
    assert state.class_warnings(minimum=3) == ["Healthy tissue: only 0 labelled pixels (< 3)",
                                               "Venous blood: only 0 labelled pixels (< 3)",
                                               "Arterial blood: only 0 labelled pixels (< 3)"]
    state.set_role("ID0003C01", "test")
    assert state.labels_check().message == "ID0003C01: missing dark.tif, white.tif"
    state.set_role("ID0003C01", "skip")
    spec = state.job_spec("ds")
    assert spec.train_capture_ids == ("ID0001C01",) and spec.training.epochs == 100 and spec.training.cross_validation == "double"
    state.params = dataclasses.replace(state.params, cross_validation="none")
    assert state.job_spec("ds").training.cross_validation == "none"
    with pytest.raises(ValueError, match="role"):
        state.set_role("ID0001C01", "maybe")
    assert state.start_blocker == "pre-flight checks have not run yet"
    with pytest.raises(DatasetError, match="does not exist"):
        scan_dataset(tmp_path / "missing")


def test_flat_metrics_and_time_estimate():
    assert flat_metrics({"oacc": 0.9, "sensitivity": {"1": 0.8, "2": [1]}, "confusion": [[1]], "ok": True}) == {
        "oacc": 0.9, "sensitivity.1": 0.8}
    snap = RunSnapshot(phase="submitted", started=100.0, running_since=110.0,
                       epochs=[{"event": "epoch", "epoch": 1, "epochs": 4, "loss": 1.0}])
    assert snap.fraction == 0.25
    assert snap.remaining_s(now=130.0) == pytest.approx(60.0)  # 20 s for a quarter -> 60 s to go
    assert snap.elapsed_s(now=130.0) == pytest.approx(30.0)
    assert RunSnapshot(phase="done", running_since=1.0, epochs=snap.epochs).remaining_s(now=5.0) is None
