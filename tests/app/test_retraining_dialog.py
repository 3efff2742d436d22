"""Retraining dialog end to end: a real local job through Azurite, cancel, failing pre-flight checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.application import create_application
from app.retraining.dialog import RetrainingDialog
from app.retraining.runner import Environment
from tests.support.azurite import connection_string, started_azurite


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    yield from started_azurite(tmp_path_factory.mktemp("azurite-retrain"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three tiny synthetic captures; the third has no labels."""
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path_factory.mktemp("data") / "retrain-ds"
    profile = small_profile(16, 24)
    for k, patient in enumerate(("ID18", "ID20", "ID25")):
        cap = generate_capture(seed=k, patient=patient, profile=profile)
        labels = cap.labels if k < 2 else np.zeros_like(cap.labels)
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, labels,
                             metadata=cap.metadata, meta={"patient": patient, "source": "synthetic"})
    return root


def make_env(conn: str, container: str, jobs_dir) -> Environment:
    from remote.blob_storage import BlobStorage
    from remote.training_backends import LocalBackend

    return Environment(
        storage=lambda: BlobStorage(conn, container=container, retries=0, timeout_s=5.0),
        backend=lambda name, storage: LocalBackend(storage, jobs_dir, cancel_grace_s=2.0),
    )


@pytest.fixture
def settings(tmp_path):
    from app.settings import AppSettings

    return AppSettings.from_file(tmp_path / "settings.ini")


def open_dialog(qtbot, env, dataset, settings, tmp_path, current_model=None):
    """The dialog on ``dataset``; ``env`` None: storage and backends from the settings (Settings ▸ Cloud)."""
    create_application([])
    dialog = RetrainingDialog(env=env, settings=settings, models_dir=tmp_path / "models", dataset=dataset,
                              current_model=current_model, poll_ms=50)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=30_000)  # the dataset is read on a worker
    return dialog


def wait_checks(qtbot, dialog):
    qtbot.waitUntil(lambda: not dialog.checks_running and bool(dialog.state.checks), timeout=30_000)


def test_defaults_table_and_class_warnings(qtbot, dataset, azurite, tmp_path, settings, monkeypatch):
    import threading

    import app.retraining.dialog as dialog_module

    readers = []
    real_scan = dialog_module.scan_dataset

    def recording_scan(root):
        readers.append(threading.current_thread())
        return real_scan(root)

    monkeypatch.setattr(dialog_module, "scan_dataset", recording_scan)
    env = make_env(azurite.connection_string, "tdefaults", tmp_path / "jobs")
    dialog = open_dialog(qtbot, env, dataset, settings, tmp_path)
    # the label PNGs are read on a worker of the app's job runner, never on the GUI thread
    assert readers and threading.main_thread() not in readers
    p = dialog.state.params
    assert (p.epochs, p.batch_size, p.patch_size, p.folds, p.lr, p.cross_validation, p.seed) == (100, 16, 7, 5, 1e-3, "double", 0)
    assert (dialog.form.epochs_spin.value(), dialog.form.batch_spin.value(), dialog.form.patch_spin.value()) == (100, 16, 7)
    assert dialog.form.folds_spin.value() == 5 and dialog.form.lr_spin.value() == pytest.approx(1e-3)
    assert dialog.captures.table.rowCount() == 3
    assert dialog.captures.table.item(2, 3 + 5).text() == "no labels"
    assert not dialog.captures.table.cellWidget(2, 2).isEnabled()
    row0 = dialog.state.rows[0]
    assert dialog.captures.table.item(0, 3).text() == f"{row0.counts[1]:,}"
    # a tiny capture holds fewer than 100 labelled pixels of some classes: warned about, per class
    dialog.set_role(dialog.state.rows[0].capture_id, "test")
    assert dialog.state.test_ids == {row0.capture_id}
    train = dialog.state.rows[1].counts
    few = [c for c in range(1, 6) if train[c] < 100]
    assert few and len(dialog.captures.warnings_label.text().splitlines()) == len(few)
    assert f"only {train[few[0]]} labelled pixels" in dialog.captures.warnings_label.text()
    wait_checks(qtbot, dialog)
    assert dialog.start_button.isEnabled(), dialog.reason_label.text()


def test_failing_preflight_checks_disable_start_with_the_reason(qtbot, dataset, azurite, tmp_path, settings,
                                                                 monkeypatch):
    monkeypatch.delenv("NEUROHSI_STORAGE_CONNECTION_STRING", raising=False)
    # no credentials at all (empty keyring, no env): the default storage cannot be built
    from app.retraining.runner import default_environment

    dialog = open_dialog(qtbot, default_environment(), dataset, settings, tmp_path)
    assert not dialog.start_button.isEnabled()
    wait_checks(qtbot, dialog)
    assert not dialog.start_button.isEnabled()
    assert dialog.reason_label.text().startswith("credentials: no blob storage configured")
    assert "✗ credentials" in dialog.checks_label.text()
    # wrong account key: storage answers but refuses the credentials
    bad = connection_string(azurite.port, key="d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    dialog.env = make_env(bad, "twrongkey", tmp_path / "jobs")
    dialog.run_checks()
    wait_checks(qtbot, dialog)
    assert not dialog.start_button.isEnabled()
    assert "refused the credentials" in dialog.reason_label.text()
    assert "d3Jvbmcta2V5" not in dialog.reason_label.text()
    # labels missing: deselect every labelled capture
    dialog.env = make_env(azurite.connection_string, "tlabels", tmp_path / "jobs")
    dialog.run_checks()
    wait_checks(qtbot, dialog)
    assert dialog.start_button.isEnabled()
    for row in dialog.state.rows:
        dialog.set_role(row.capture_id, "skip")
    assert not dialog.start_button.isEnabled()
    assert dialog.reason_label.text() == "labels: no labelled capture selected for training"
    # a capture without labels cannot be used either
    dialog.set_role(dialog.state.rows[0].capture_id, "train")
    dialog.set_role(dialog.state.rows[2].capture_id, "test")
    assert dialog.reason_label.text() == f"labels: {dialog.state.rows[2].capture_id}: no labels"
    assert not dialog.start_button.isEnabled()


def answer_next_question(qtbot, answer: str = "yes", seen: list | None = None) -> None:
    """Click Yes/No on the next modal question box when it opens (a real QMessageBox, run by exec())."""
    from PySide6 import QtCore, QtWidgets

    def click():
        box = QtWidgets.QApplication.activeModalWidget()
        if not isinstance(box, QtWidgets.QMessageBox):
            QtCore.QTimer.singleShot(20, click)
            return
        if seen is not None:
            seen.append(box.text())
        button = QtWidgets.QMessageBox.StandardButton.Yes if answer == "yes" else QtWidgets.QMessageBox.StandardButton.No
        box.button(button).click()

    QtCore.QTimer.singleShot(20, click)


def test_capture_table_shows_at_least_eight_rows_at_the_default_size(qtbot, tmp_path, settings):
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path / "many"
    profile = small_profile(8, 8)
    for k in range(12):
        cap = generate_capture(seed=k, patient=f"ID{30 + k}", profile=profile)
        write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                             metadata=cap.metadata, meta={"patient": f"ID{30 + k}"})
    env = Environment(storage=lambda: (_ for _ in ()).throw(ValueError("no storage in this test")),
                      backend=lambda name, storage: None)
    dialog = open_dialog(qtbot, env, root, settings, tmp_path)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.captures.table.rowCount() == 12
    assert dialog.height() <= 1000  # the default size fits a 1920 x 1080 screen with a task bar
    qtbot.waitUntil(lambda: dialog.captures.visible_rows() >= 8, timeout=30_000)  # once the layout has settled
    before = dialog.captures.visible_rows()
    dialog.resize(dialog.width(), dialog.height() + 300)  # and it grows with the dialog
    qtbot.waitUntil(lambda: dialog.captures.visible_rows() > before, timeout=30_000)


@pytest.mark.slow
def test_local_job_checks_uploads_trains_compares_installs_reverts_then_cancels(
        qtbot, dataset, azurite, tmp_path, settings, memory_keyring, monkeypatch):
    from tests.support.azurite import DEV_KEY

    monkeypatch.setenv("NEUROHSI_HOME", str(tmp_path / "home"))  # local jobs go to NEUROHSI_HOME/jobs
    for var in ("NEUROHSI_STORAGE_CONNECTION_STRING", "NEUROHSI_CONTAINER", "NEUROHSI_STORAGE_AUTH",
                "NEUROHSI_STORAGE_ACCOUNT_URL"):
        monkeypatch.delenv(var, raising=False)
    from core.model.installed import ModelStore

    source = tmp_path / "current.safetensors"
    _write_current_model(source)
    current = Path(ModelStore(tmp_path / "models").install(source).path)  # the model in use before
    # no env given: storage comes from Settings ▸ Cloud, filled in through its page like a technician does
    dialog = open_dialog(qtbot, None, dataset, settings, tmp_path)
    assert dialog.current_model == current  # the store's model is the one compared against
    wait_checks(qtbot, dialog)
    assert not dialog.start_button.isEnabled() and "no blob storage configured" in dialog.reason_label.text()
    cloud = dialog.cloud_button.isEnabled() and dialog.open_cloud_settings()
    qtbot.addWidget(cloud)
    page = cloud.page
    page.auth_combo.setCurrentIndex(page.auth_combo.findData("account-key"))
    page.edits["storage_account_url"].setText(azurite.account_url)
    page.edits["container"].setText("tretrain")
    page.save()
    page.secret_edit.setText(DEV_KEY)
    page.secret_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    page.storage_button.click()
    qtbot.waitUntil(lambda: not page.busy, timeout=20_000)
    assert page.storage_result.text().startswith("✓ Storage works: container 'tretrain'"), page.storage_result.text()
    assert settings.get("cloud_storage_auth") == "account-key"
    assert all(DEV_KEY not in str(settings.qsettings.value(k)) for k in settings.qsettings.allKeys())  # keyring only
    cloud.close()  # the checks run again with the new settings
    wait_checks(qtbot, dialog)
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=20_000)
    dialog.form.epochs_spin.setValue(2)
    dialog.form.cv_check.setChecked(False)
    held_out = dialog.state.rows[1].capture_id
    dialog.set_role(held_out, "test")
    wait_checks(qtbot, dialog)
    assert dialog.start_button.isEnabled(), dialog.reason_label.text()
    dialog.start_button.click()
    assert not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not dialog.state.running, timeout=120_000)
    snap = dialog.last
    assert snap.error is None, snap.error
    # every phase in order, each with its own progress; the clock stopped at the end
    phases = [p for p, _ in snap.phases]
    assert phases == ["checking", "uploading", "queued", "training", "selecting", "downloading", "evaluating"] or \
        phases == ["checking", "uploading", "queued", "selecting", "downloading", "evaluating"], phases
    statuses = [s for s, _ in snap.timeline]
    assert statuses[-1] == "Completed", (statuses, snap.log)
    # the chart's epochs came through the job's MLflow run: the same values training stored with the model
    from remote.tracking import read_job_metrics

    backend = dialog.env.backend("local", dialog.env.storage())
    assert backend.tracking_location(snap.job_id) is not None
    stored = [(e["epoch"], e["loss"]) for e in read_job_metrics(backend, snap.job_id) if e["event"] == "epoch"]
    assert [(e["epoch"], e["loss"]) for e in snap.epochs] == stored and len(stored) == 2
    # the completed job's model is listed under "Registered models" (the local registry), with its tags
    qtbot.waitUntil(lambda: dialog.registry.table.rowCount() >= 1, timeout=30_000)
    row = next(r for r in dialog.registry.rows if r["version"] == snap.job_id)
    assert row["profile"] == "synthetic-small" and len(row["dataset_sha256"]) == 64
    shown_version = [dialog.registry.table.item(r, 1).text() for r in range(dialog.registry.table.rowCount())]
    assert snap.job_id in shown_version and "registered version" in dialog.registry.status_label.text()
    assert snap.upload[0] == snap.upload[1] > 0
    assert dialog.job.phase_label.text() == "Finished" and dialog.job.phase_bar.value() == 100
    assert snap.ended is not None and snap.elapsed_s() == snap.elapsed_s(now=snap.ended + 100.0)
    shown = dialog.job.time_label.text()
    qtbot.wait(1_200)
    assert dialog.job.time_label.text() == shown  # the timer stops at the end
    # chart: titled axes, one line for a no-cv model; log: plain summary, raw log folded
    assert dialog.job.loss_plot.getAxis("bottom").labelText == "epoch"
    assert list(dialog.job.loss_curves) == ["model"] and len(dialog.job.loss_curves["model"].getData()[0]) == 2
    summary = dialog.job.summary_view.toPlainText()
    assert "Checking the captures" in summary and "Uploading" in summary and "Finished (Completed)" in summary
    assert dialog.job.log_view.isHidden() and dialog.job.log_view.toPlainText()  # folded away
    dialog.job.raw_toggle.click()
    assert not dialog.job.log_view.isHidden()
    # the new model carries the dataset name, the date and version 1
    info = snap.new_info
    assert info.name.startswith("conv2dnet-retrain-ds-20") and info.version == "1"
    # comparison: both models on the same held-out capture, plain names, a verdict
    cmp = snap.comparison
    assert cmp is not None and cmp.capture_ids == (held_out,)
    assert cmp.installed.metrics is not None and cmp.new.metrics is not None
    assert cmp.installed.metrics["n"] == cmp.new.metrics["n"] == cmp.n_pixels > 0
    table = dialog.comparison.metrics_table
    assert table.item(0, 0).text().endswith(": sensitivity") and table.item(1, 0).text().startswith("Macro F1")
    assert table.item(0, 1).text().endswith("%") and table.item(0, 2).text().endswith("%")
    assert cmp.verdict in dialog.comparison.verdict_label.text()
    assert cmp.verdict.startswith(("Recommended", "Not recommended")) and "Tumour sensitivity" in cmp.verdict
    assert dialog.comparison.new_matrix.table.rowCount() == 5
    # "Use this model" asks first (for a model worse on tumour: a typed reason); No keeps everything as it was
    assert dialog.comparison.use_button.isEnabled() and dialog.start_button.isEnabled()
    questions = []
    dialog.ask = lambda _title, text: questions.append(text) or False
    dialog.ask_reason = lambda _title, text: questions.append(text) or None
    dialog.comparison.use_button.click()
    assert questions and f"{info.name} v{info.version}" in questions[0] and cmp.verdict in questions[0]
    assert dialog.installed is None and dialog.store.current_path() == current
    dialog.ask = lambda _title, _text: True
    dialog.ask_reason = lambda _title, _text: "two-epoch test model, installed on purpose"
    dialog.comparison.use_button.click()
    qtbot.waitUntil(lambda: dialog.installed is not None, timeout=30_000)  # copied and verified on a worker
    installed = dialog.installed
    assert installed.parent == tmp_path / "models" and installed.is_file() and "-v1" in installed.name
    entry = dialog.store.current()
    assert entry.path == str(installed) and entry.previous == str(current) and entry.verdict == cmp.verdict
    assert entry.override == ("two-epoch test model, installed on purpose" if cmp.tumour_worse else "")
    from core.model.files import load_model

    assert load_model(installed).info.sha256 == info.sha256
    # one-click revert: the previous model is in use again, and the history says so
    qtbot.waitUntil(lambda: dialog.comparison.revert_button.isEnabled(), timeout=10_000)
    dialog.comparison.revert_button.click()
    qtbot.waitUntil(lambda: dialog.store.current_path() == current, timeout=10_000)
    assert [e.action for e in dialog.store.entries()] == ["install", "install", "revert"]
    assert installed.is_file()  # reverting keeps the file
    del dialog.ask, dialog.ask_reason  # the real questions again
    # second run: version 2; Cancel asks, No keeps it running, Yes cancels -> Canceled
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.last is not None and dialog.last.job_id is not None, timeout=60_000)
    assert dialog.run.spec.model_version == "2"
    assert not dialog.start_button.isEnabled()
    answer_next_question(qtbot, "no")
    dialog.cancel_button.click()
    assert dialog.state.running and not dialog.run._cancel.is_set()
    answer_next_question(qtbot, "yes")
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.state.running, timeout=30_000)
    statuses = [s for s, _ in dialog.last.timeline]
    assert statuses[-1] == "Canceled" and "CancelRequested" in statuses
    assert dialog.job.phase_label.text() == "Cancelled"  # never "Finished" for a cancelled job
    assert dialog.start_button.isEnabled() and not dialog.comparison.use_button.isEnabled()


def _write_current_model(path):
    import torch

    from core.model.network import Conv2DNet
    from core.model.files import save_model

    torch.manual_seed(0)
    save_model(path, Conv2DNet(25, 5), name="current", class_ids=(1, 2, 3, 4, 5),
               class_names=("Healthy", "Tumour", "Venous", "Arterial", "Dura"), profile_id="synthetic-small",
               metrics={"oacc": 0.5})


def test_a_truncated_capture_stops_the_run_while_checking_before_any_upload(qtbot, dataset, azurite, tmp_path,
                                                                             settings):
    import shutil

    copy = tmp_path / "retrain-ds"
    shutil.copytree(dataset, copy)
    white = sorted(copy.glob("*/white.tif"))[0]
    white.write_bytes(white.read_bytes()[:-300])  # the header still reads: only a full decode notices
    env = make_env(azurite.connection_string, "ttruncated", tmp_path / "jobs")
    dialog = open_dialog(qtbot, env, copy, settings, tmp_path)
    dialog.set_role(dialog.state.rows[2].capture_id, "skip")
    wait_checks(qtbot, dialog)
    assert dialog.start_button.isEnabled(), dialog.reason_label.text()
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.state.running, timeout=60_000)
    snap = dialog.last
    assert snap.phase == "error" and str(white) in snap.error
    assert [p for p, _ in snap.phases] == ["checking"] and snap.upload == (0, 0) and snap.job_id is None
    assert dialog.reason_label.text().startswith("job failed: ") and "white.tif" in dialog.reason_label.text()
    assert dialog.job.phase_label.text() == "Failed" and snap.ended is not None
