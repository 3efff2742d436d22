"""Labelling at the joints of the clinical loop: provenance after undo, counts after a killed save,
recoverable labels named at launch, the research notice, screens of 1280 x 800, camera-capture labels."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from app.labelling.integration import install_labelling, labels_folder
from app.labelling.session import LabellingSession, Prediction
from app.retraining.state import scan_dataset
from core.labels import store
from tests.support.gui import open_and_wait

MODEL = {"name": "m", "version": "4", "sha256": "ab" * 32}


def test_from_prediction_follows_undo_and_redo(tmp_path):
    session = LabellingSession(tmp_path, (8, 10), author="Dr. Undo")
    prediction = Prediction(np.full((8, 10), 2, np.uint8), None, MODEL)
    session.copy_prediction(prediction)
    session.editor.undo()  # the prediction taken back: the labels no longer start from it
    session.save()
    meta = json.loads((tmp_path / "meta.json").read_text())["labels"]
    assert meta["from_prediction"] is False and meta["prelabel_model"] is None
    session.editor.redo()
    session.save()
    meta = json.loads((tmp_path / "meta.json").read_text())["labels"]
    assert meta["from_prediction"] is True and meta["prelabel_model"] == MODEL


def test_counts_left_stale_by_a_killed_save_are_recounted_on_open_and_scan(tmp_path):
    folder = tmp_path / "ds" / "ID0001C01"
    folder.mkdir(parents=True)
    store.save_labels(folder, np.ones((6, 6), np.uint8), author="a")
    from core.labels.maps import write_label_png

    write_label_png(folder / "labels.png", np.full((6, 6), 2, np.uint8))  # the kill: new map, old meta.json
    session = LabellingSession(folder, (6, 6))
    assert session.counts_fixed
    counts = json.loads((folder / "meta.json").read_text())["labels"]["counts"]
    assert counts["2"] == 36 and counts["1"] == 0
    assert not store.reconcile_counts(folder)  # agrees now: nothing to do


_SAVE_FOREVER = """
import sys
import numpy as np
from core.labels import store
folder = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]))
print("ready", flush=True)
while True:
    store.save_labels(folder, rng.integers(0, 6, (64, 64), dtype=np.uint8), author="kill test")
"""


def test_kill_9_during_label_saves_then_reconcile_agrees(tmp_path):
    from core.labels.maps import label_counts, read_label_png

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for k in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(tmp_path), str(k)], env=env,
                                stdout=subprocess.PIPE)
        proc.stdout.readline()
        time.sleep(0.3 + 0.07 * k)
        proc.kill()
        proc.wait()
        store.remove_stale_temp_files(tmp_path)
        store.reconcile_counts(tmp_path)
        meta = json.loads((tmp_path / "meta.json").read_text())  # never torn
        actual = {str(c): n for c, n in label_counts(read_label_png(tmp_path / "labels.png")).items()}
        assert meta["labels"]["counts"] == actual


def test_old_camera_capture_labels_are_listed_with_why(tmp_path, capture_files):
    raw = capture_files((40, 60), name="ID0009C02", folder=tmp_path)
    folder = labels_folder(raw, "ID0009C02")
    folder.mkdir()
    store.save_labels(folder, np.ones((8, 12), np.uint8), author="a")  # saved by a version that kept no frames
    rows = scan_dataset(tmp_path)
    assert [r.capture_id for r in rows] == ["ID0009C02"] and not rows[0].labelled
    assert "ID0009C02.tif" in rows[0].problem and "Save again" in rows[0].problem


def test_labelling_window_fits_short_screens_shows_the_notice_and_no_placeholder_warning(
        qtbot, qtlog, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    controller = install_labelling(window)
    open_and_wait(qtbot, window, raw)
    widget = controller.open_labelling()
    lw = controller.labelling_window
    qtbot.waitExposed(lw)
    area = lw.screen().availableGeometry()
    assert lw.frameGeometry().height() <= area.height() and lw.width() <= area.width()
    assert lw.minimumSizeHint().height() <= 768 - 40 and lw.minimumSizeHint().width() <= 1280
    assert lw.banner.isVisible() and "research" in lw.banner.text().lower()
    widget.shutdown()


def test_restoring_labels_on_the_first_open_marks_the_window_without_a_qt_warning(qtbot, qtlog, make_window, tmp_path):
    from app.labelling.integration import LabellingWindow
    from app.labelling.widget import LabellingWidget

    window = make_window()
    store.write_recovery(tmp_path, np.ones((8, 12), np.uint8))
    widget = LabellingWidget(None, restore_prompt=lambda *_a: True)
    lw = LabellingWindow(window, widget)
    lw.show()  # Qt checks the placeholder of a visible window
    widget.open(tmp_path, None, shape=(8, 12))  # restored inside open(): modified before any capture title
    assert lw.isWindowModified() and widget.dirty
    assert not [r for r in qtlog.records if "[*]" in r.message]
    widget.session.close()
    widget.shutdown()
    lw.close()


def test_recoverable_labels_are_named_at_launch(qtbot, make_window, tmp_path):
    from core.capture.synthetic.captures import generate_capture, small_profile
    from tests.support.gui import write_capture

    raw = write_capture(tmp_path, generate_capture(seed=5, profile=small_profile(8, 12)), name="ID0077C03")
    window = make_window()
    window.settings.add_recent_file(raw)
    folder = labels_folder(raw, raw.stem)
    folder.mkdir()
    store.write_recovery(folder, np.ones((8, 12), np.uint8))  # the app was killed with unsaved labels
    controller = install_labelling(window)  # as at launch: before anything is opened
    qtbot.waitUntil(lambda: window.sink.last is not None and "ID0077C03" in window.sink.last.text, timeout=30_000)
    assert "recovered" in window.sink.last.text and controller.mention_recoverable() == ["ID0077C03"]
