"""The clinical loop with real widgets: label a camera capture, retrain, compare, install, use, revert, restart.

Camera-named synthetic captures (``IDxxxxCyy.tif`` + ``CDyy`` + ``CWyy``) are opened in
the main window and labelled with mouse strokes in the labelling window; the folder
holding them is then the retraining dialog's dataset. Training runs locally (a real
subprocess) through Azurite; the installed model lives in the store every classify reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore

from app.labelling import prompts
from app.labelling.integration import install_labelling
from core.capture.synthetic.captures import generate_capture, small_profile
from core.model.files import load_model
from core.model.installed import ModelStore
from tests.support.azurite import started_azurite
from tests.support.gui import classify_and_wait, open_and_wait, write_capture, write_model

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    yield from started_azurite(tmp_path_factory.mktemp("azurite-loop"))


def make_env(conn: str, jobs_dir: Path):
    from app.retraining.runner import Environment
    from remote.blob_storage import BlobStorage
    from remote.training_backends import LocalBackend

    return Environment(storage=lambda: BlobStorage(conn, container="loop", retries=0, timeout_s=5.0),
                       backend=lambda name, storage: LocalBackend(storage, jobs_dir, cancel_grace_s=2.0))


def label_with_strokes(qtbot, controller, truth: np.ndarray) -> Path:
    """Ctrl+L, then for every class a few short strokes inside its annotated pixels, then Save."""
    widget = controller.open_labelling()
    qtbot.waitExposed(controller.labelling_window)
    viewport = widget.canvas.viewport()
    widget.brush_spin.setValue(3)
    for class_id in (1, 2, 3, 4, 5):
        rows, cols = np.nonzero(truth == class_id)
        if rows.size == 0:
            continue
        widget.select_class(class_id)
        for k in np.linspace(0, rows.size - 1, num=min(4, rows.size)).astype(int):
            r, c = int(rows[k]), int(cols[k])
            qtbot.mousePress(viewport, LEFT, NOMOD, widget.canvas.image_to_widget(r + 0.5, c + 0.5))
            qtbot.mouseMove(viewport, widget.canvas.image_to_widget(r + 0.5, c + 1.5))
            qtbot.mouseRelease(viewport, LEFT, NOMOD, widget.canvas.image_to_widget(r + 0.5, c + 1.5))
    assert widget.dirty
    path = widget.save()
    assert not widget.dirty
    return path


@pytest.mark.slow
def test_label_retrain_compare_install_use_revert_restart(qtbot, make_window, azurite, tmp_path):
    folder = tmp_path / "theatre-captures"  # what the camera PC writes: a flat folder of triplets
    profile = small_profile(20, 28)
    captures = [generate_capture(seed=40 + k, patient=f"ID00{41 + k}", profile=profile) for k in range(2)]
    raws = [write_capture(folder, cap, name=f"ID00{41 + k}C01") for k, cap in enumerate(captures)]
    old = write_model(tmp_path / "old.safetensors", raws[0])  # the model in use before the loop
    old_entry = ModelStore().install(old, name="old-model")
    old_sha = load_model(old).info.sha256

    window = make_window(settings_file=tmp_path / "settings.ini")
    controller = install_labelling(window)
    # label both captures with strokes (the second is held out to compare the models fairly)
    for raw, cap in zip(raws, captures):
        open_and_wait(qtbot, window, raw)
        saved = label_with_strokes(qtbot, controller, cap.labels)
        assert saved == folder / raw.stem / "labels.png"
        assert {p.name for p in saved.parent.iterdir()} >= {"raw.tif", "dark.tif", "white.tif", "meta.json"}
        meta = json.loads((saved.parent / "meta.json").read_text())
        assert meta["patient"] == raw.stem[:6] and meta["source"]["raw"] == raw.name
        assert meta["labels"]["from_prediction"] is False
    controller.widget.save_prompt = lambda *_a: prompts.DISCARD
    controller.labelling_window.close()

    # retrain from the dialog, on the folder the camera wrote
    dialog = controller.open_retraining()
    dialog.env = make_env(azurite.connection_string, tmp_path / "jobs")
    dialog.set_dataset(folder)
    qtbot.waitUntil(lambda: not dialog.loading and len(dialog.state.rows) == 2, timeout=30_000)
    assert all(row.labelled and row.problem is None for row in dialog.state.rows), dialog.state.rows
    dialog.form.epochs_spin.setValue(3)
    dialog.form.cv_check.setChecked(False)
    dialog.set_role("ID0042C01", "test")
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=30_000)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.state.running, timeout=180_000)
    snap = dialog.last
    assert snap.error is None and snap.comparison is not None, (snap.error, snap.log)
    cmp = snap.comparison
    assert cmp.capture_ids == ("ID0042C01",) and cmp.installed.metrics is not None
    assert cmp.verdict.startswith(("Recommended", "Not recommended")) and "Tumour sensitivity" in cmp.verdict
    new_info = snap.new_info
    # install ("Use this model"; a model worse on tumour needs a typed reason)
    dialog.ask = lambda _title, _text: True
    dialog.ask_reason = lambda _title, _text: "acceptance test: three-epoch model"
    dialog.comparison.use_button.click()
    qtbot.waitUntil(lambda: dialog.installed is not None, timeout=30_000)
    assert ModelStore().current().sha256 == new_info.sha256
    # the status bar and a classify name the new model at once
    ready_new = f"Model ready: {new_info.name} v{new_info.version}"
    qtbot.waitUntil(lambda: ready_new in window.model_indicator.text(), timeout=30_000)
    assert classify_and_wait(qtbot, window).model.sha256 == new_info.sha256
    assert f"{new_info.name} v{new_info.version}" in window.status.model_label.text()
    dialog.close()

    # revert from a freshly opened dialog
    controller.dialog = None
    fresh = controller.open_retraining()
    qtbot.waitUntil(lambda: fresh.comparison.revert_button.isEnabled(), timeout=10_000)
    assert fresh.revert_to.path == old_entry.path and "gui-test v3" in fresh.comparison.revert_button.toolTip()
    fresh.comparison.revert_button.click()
    qtbot.waitUntil(lambda: ModelStore().current_path() == Path(old_entry.path), timeout=10_000)
    qtbot.waitUntil(lambda: "Model ready: gui-test v3" in window.model_indicator.text(), timeout=30_000)
    assert classify_and_wait(qtbot, window).model.sha256 == old_sha
    fresh.close()
    history = ModelStore().entries()
    assert [e.action for e in history] == ["install", "install", "revert"]
    assert history[1].verdict == cmp.verdict and history[1].via == "gui"

    # restart the app: still the old model
    window.close()
    again = make_window(settings_file=tmp_path / "settings.ini")
    qtbot.waitUntil(lambda: "Model ready: gui-test v3" in again.model_indicator.text(), timeout=30_000)
    open_and_wait(qtbot, again, raws[0])
    assert classify_and_wait(qtbot, again).model.sha256 == old_sha


def test_a_change_made_by_the_cli_reaches_a_running_window(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window()
    qtbot.waitUntil(lambda: window.model_loader.state in ("ready", "missing", "failed"), timeout=30_000)
    window.model_watch.timer.setInterval(100)
    from app.cli.main import main

    assert main(["model", "install", str(model), "--yes"]) == 0  # as if typed in a terminal
    qtbot.waitUntil(lambda: "Model ready: gui-test v3" in window.model_indicator.text(), timeout=20_000)
    open_and_wait(qtbot, window, raw)
    assert classify_and_wait(qtbot, window).model.sha256 == ModelStore().current().sha256
