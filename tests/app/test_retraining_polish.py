"""The retraining dialog at the joints: fits short screens, remembers its dataset and form, re-opens
without sticking, names versions, and says what a job did in words that do not mislead."""
from __future__ import annotations

import json

import pytest

from app.application import create_application
from app.retraining.dialog import RetrainingDialog
from app.retraining.run_snapshot import RunSnapshot, training_detail


@pytest.fixture
def settings(tmp_path):
    from app.settings import AppSettings

    return AppSettings.from_file(tmp_path / "settings.ini")


@pytest.fixture
def dataset(tmp_path):
    from core.capture.synthetic.captures import generate_capture, small_profile
    from core.dataset.folders import write_capture_folder

    root = tmp_path / "ds"
    cap = generate_capture(seed=1, patient="ID18", profile=small_profile(8, 8))
    write_capture_folder(root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels, metadata=cap.metadata)
    return root


def make(qtbot, settings, tmp_path, **kw):
    create_application([])
    dialog = RetrainingDialog(settings=settings, models_dir=tmp_path / "models", poll_ms=50, **kw)
    qtbot.addWidget(dialog)
    return dialog


def test_fits_1280x800_and_1366x768_screens(qtbot, settings, tmp_path):
    dialog = make(qtbot, settings, tmp_path)
    dialog.show()
    qtbot.waitExposed(dialog)
    area = dialog.screen().availableGeometry()  # offscreen: 800 px high, shorter than either screen
    assert dialog.frameGeometry().height() <= area.height()
    hint = dialog.minimumSizeHint()
    assert hint.height() <= 768 - 40 and hint.width() <= 1280  # "Use this model", "Revert" and the chart on screen
    for button in (dialog.comparison.use_button, dialog.comparison.revert_button):
        corner = button.mapTo(dialog, button.rect().bottomRight())
        assert corner.y() <= dialog.height() and corner.x() <= dialog.width()


def test_remembers_dataset_and_form_and_reopens_without_sticking(qtbot, settings, tmp_path, dataset):
    dialog = make(qtbot, settings, tmp_path, dataset=dataset)
    qtbot.waitUntil(lambda: not dialog.loading, timeout=20_000)
    dialog.form.epochs_spin.setValue(7)
    dialog.form.cv_check.setChecked(False)
    dialog.show()
    dialog.close()  # hidden, as the Labels menu does; scans and checks stop being watched
    dialog.show()  # re-opened: reads again and never waits on a job it stopped watching
    qtbot.waitUntil(lambda: not dialog.loading and not dialog.checks_running, timeout=20_000)
    assert dialog.reason_label.text() != "reading the dataset…"
    memory = json.loads(settings.get("retraining_memory"))
    assert memory["dataset"] == str(dataset) and memory["epochs"] == 7
    again = make(qtbot, settings, tmp_path)  # next opening, also after a restart
    qtbot.waitUntil(lambda: again.state.dataset is not None and not again.loading, timeout=20_000)
    assert again.state.dataset == dataset and again.form.epochs_spin.value() == 7
    assert not again.form.cv_check.isChecked() and len(again.state.rows) == 1


def test_names_versions_and_the_model_in_use(qtbot, settings, tmp_path, small_files):
    from core.model.installed import ModelStore

    _raw, model = small_files
    ModelStore(tmp_path / "models").install(model)
    dialog = make(qtbot, settings, tmp_path)
    qtbot.waitUntil(lambda: dialog.in_use is not None, timeout=10_000)
    assert dialog.comparison.history_label.text().startswith("In use: gui-test v3")
    assert dialog.revert_to is not None and "demo" in dialog.comparison.revert_button.toolTip()


def test_words_for_progress_and_endings():
    lockstep = [{"event": "epoch", "fold": f, "epoch": 3, "epochs": 100} for f in range(25)]
    progress, detail = training_detail(lockstep)
    assert progress == pytest.approx(0.03) and detail == "epoch 3 of 100, 25 fold models together"
    assert "fold 25 of 25" not in detail
    assert RunSnapshot(phase="done", status="Canceled").phase_title == "Cancelled"
    assert RunSnapshot(phase="done", status="Completed").phase_title == "Finished"
    assert RunSnapshot(phase="error", error="x").phase_title == "Failed"


def test_registry_accuracy_is_a_percentage_as_in_the_comparison(qtbot):
    from app.retraining.registry_view import RegistryView

    create_application([])
    view = RegistryView(lambda: None)
    qtbot.addWidget(view)
    view.show_rows([{"name": "m", "version": "job-1", "held_out_oacc": "0.3771", "test_oacc_mean": 0.5}])
    texts = [view.table.item(0, c).text() for c in range(view.table.columnCount())]
    assert "37.7 %" in texts and "50.0 %" in texts and "0.3771" not in texts


def test_running_is_not_shown_as_an_error(qtbot, settings, tmp_path):
    dialog = make(qtbot, settings, tmp_path)
    dialog.state.running = True
    dialog._sync()
    assert dialog.reason_label.text() == "a training job is running"
    assert "e06060" not in dialog.reason_label.styleSheet()
    dialog.state.running = False
    dialog._sync()
    assert "e06060" in dialog.reason_label.styleSheet()


def test_override_reason_dialog_fits_and_needs_a_real_reason(qtbot):
    from app.retraining.override_dialog import OverrideDialog

    create_application([])
    long_verdict = "Not recommended: worse on tumour sensitivity. " + "better on something by 1.0 points; " * 30
    dialog = OverrideDialog("Install a model worse on tumour?", long_verdict)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    area = dialog.screen().availableGeometry()
    assert dialog.frameGeometry().width() <= area.width() and dialog.frameGeometry().height() <= area.height()
    assert not dialog.ok_button.isEnabled()
    dialog.reason_edit.setText("ok")
    assert not dialog.ok_button.isEnabled()  # too short to tell a later reader anything
    dialog.reason_edit.setText("tumour labels of this ward are thin")
    assert dialog.ok_button.isEnabled() and dialog.reason == "tumour labels of this ward are thin"

