"""Never lose work: autosave, crash recovery offer, atomic save through the labelling widget."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from PySide6 import QtCore

from app.application import create_application
from app.labelling import prompts
from app.labelling.widget import LabellingWidget
from core import fileio
from core.labels import store

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier
H, W = 30, 40


def make_widget(qtbot, answers, errors, *, autosave_ms=10_000):
    create_application([])

    def prompt(parent, folder):
        answers.append(folder)
        return answers.restore

    w = LabellingWidget(restore_prompt=prompt, save_prompt=lambda parent, folder: prompts.DISCARD,
                        error_sink=errors.append, autosave_ms=autosave_ms)
    qtbot.addWidget(w)
    w.resize(800, 500)
    w.show()
    qtbot.waitExposed(w)
    return w


class Answers(list):
    restore = True


def paint(qtbot, w, row, col):
    vp = w.canvas.viewport()
    pos = w.canvas.image_to_widget(row + 0.5, col + 0.5)
    qtbot.mousePress(vp, LEFT, NOMOD, pos)
    qtbot.mouseRelease(vp, LEFT, NOMOD, pos)


def test_autosave_timer_writes_the_recovery_file(qtbot, tmp_path):
    answers, errors = Answers(), []
    w = make_widget(qtbot, answers, errors, autosave_ms=50)
    w.open(tmp_path, None, shape=(H, W))
    assert w.autosave_timer.isActive() and w.autosave_timer.interval() == 50
    w.brush_spin.setValue(5)
    paint(qtbot, w, 10, 10)
    path = store.recovery_path(tmp_path)
    qtbot.waitUntil(path.exists, timeout=30_000)
    w.wait_autosave()
    back, info = store.read_recovery(tmp_path)
    assert np.array_equal(back, w.session.editor.labels) and info["author"]
    assert not answers and not errors
    w.shutdown()


def test_default_interval_is_ten_seconds(qtbot, tmp_path):
    w = make_widget(qtbot, Answers(), [])
    w.open(tmp_path, None, shape=(H, W))
    assert w.autosave_timer.interval() == 10_000
    w.shutdown()


def test_crash_then_restart_offers_and_restores_the_recovered_labels(qtbot, tmp_path):
    answers, errors = Answers(), []
    first = make_widget(qtbot, answers, errors)
    first.open(tmp_path, None, shape=(H, W))
    first.brush_spin.setValue(7)
    paint(qtbot, first, 15, 20)
    painted = first.session.editor.labels.copy()
    first.autosave_async()  # the 10 s timer's work
    first.wait_autosave()
    # crash: the first window never closes or saves; a new app opens the same capture
    assert not (tmp_path / "labels.png").exists()
    second = make_widget(qtbot, answers, errors)
    second.open(tmp_path, None, shape=(H, W))
    assert answers == [tmp_path]  # offered exactly once
    assert np.array_equal(second.session.editor.labels, painted)
    assert second.session.editor.can_undo  # restoring is itself undoable
    second.save()
    assert not store.recovery_path(tmp_path).exists()
    # reopening after a save offers nothing
    third = make_widget(qtbot, answers, errors)
    third.open(tmp_path, None, shape=(H, W))
    assert answers == [tmp_path] and np.array_equal(third.session.editor.labels, painted)
    for w in (first, second, third):
        w.autosave_timer.stop()
    third.shutdown()
    assert not errors


def test_declining_the_recovery_keeps_it_in_recovered_folder(qtbot, tmp_path):
    answers, errors = Answers(), []
    answers.restore = False
    w = make_widget(qtbot, answers, errors)
    w.open(tmp_path, None, shape=(H, W))
    paint(qtbot, w, 5, 5)
    painted = w.session.editor.labels.copy()
    w.close_session()  # what the app does when it goes away without asking (logout without interaction)
    assert store.recovery_pending(tmp_path)
    again = make_widget(qtbot, answers, errors)
    again.open(tmp_path, None, shape=(H, W))
    assert answers == [tmp_path]
    assert not again.session.editor.labels.any() and not store.recovery_path(tmp_path).exists()
    kept = list((tmp_path / store.RECOVERED_DIR).iterdir())
    assert len(kept) == 1 and "declined" in kept[0].name
    assert np.array_equal(np.asarray(Image.open(kept[0])), painted)  # moved, not deleted
    again.shutdown()
    w.shutdown()
    assert not errors


def test_damaged_recovery_is_reported_set_aside_and_labelling_opens(qtbot, tmp_path):
    store.write_recovery(tmp_path, np.ones((H, W), np.uint8))
    data = store.recovery_path(tmp_path).read_bytes()
    store.recovery_path(tmp_path).write_bytes(data[: len(data) // 2])  # power cut mid-write of an old version
    answers, errors = Answers(), []
    w = make_widget(qtbot, answers, errors)
    w.open(tmp_path, None, shape=(H, W))
    assert answers == []  # nothing to offer
    assert len(errors) == 1 and ".labels.recovery.png" in str(errors[0]) and "recovered" in str(errors[0])
    assert not store.recovery_path(tmp_path).exists()
    kept = list((tmp_path / store.RECOVERED_DIR).iterdir())
    assert len(kept) == 1 and "damaged" in kept[0].name and kept[0].read_bytes() == data[: len(data) // 2]
    paint(qtbot, w, 10, 10)  # labelling works
    assert w.session.editor.labels.any() and w.save() is not None
    w.shutdown()


def test_stale_temp_files_of_an_interrupted_save_are_removed_on_open(qtbot, tmp_path):
    stale = [tmp_path / ".labels.png.abc123.tmp", tmp_path / ".meta.json.x1.tmp",
             tmp_path / "..labels.recovery.png.q.tmp"]  # atomic_write names them ".<name>.<random>.tmp"
    for path in stale:
        path.write_bytes(b"partial")
    keep = tmp_path / ".other.tmp"
    keep.write_bytes(b"not ours")
    w = make_widget(qtbot, Answers(), [])
    w.open(tmp_path, None, shape=(H, W))
    assert not any(p.exists() for p in stale) and keep.exists()
    assert sorted(w.session.removed_temp_files) == sorted(stale)
    assert "interrupted save" in w.status_label.text()
    w.shutdown()


def test_older_recovery_than_saved_labels_is_not_offered(qtbot, tmp_path):
    store.write_recovery(tmp_path, np.ones((H, W), np.uint8))
    saved = np.full((H, W), 2, np.uint8)
    store.save_labels(tmp_path, saved, author="a")
    store.write_recovery(tmp_path, np.ones((H, W), np.uint8))
    stamp = (tmp_path / "labels.png").stat().st_mtime_ns
    os.utime(store.recovery_path(tmp_path), ns=(stamp - 10**9, stamp - 10**9))  # autosave older than the save
    answers = Answers()
    w = make_widget(qtbot, answers, [])
    w.open(tmp_path, None, shape=(H, W))
    assert answers == [] and np.array_equal(w.session.editor.labels, saved)
    w.shutdown()


def test_interrupted_save_keeps_previous_labels_png(qtbot, tmp_path, monkeypatch):
    answers, errors = Answers(), []
    w = make_widget(qtbot, answers, errors)
    w.open(tmp_path, None, shape=(H, W))
    paint(qtbot, w, 10, 10)
    assert w.save() is not None
    before = (tmp_path / "labels.png").read_bytes()
    paint(qtbot, w, 20, 30)

    def replace_fails(src, dst):
        assert os.path.getsize(src) > 0  # the temporary file was written in full first
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", replace_fails)
    assert w.save() is None
    assert "No space left" in str(errors[-1])
    assert (tmp_path / "labels.png").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert w.session.dirty  # the edit is still waiting to be saved
    monkeypatch.undo()
    assert w.save() is not None and not w.session.dirty
    w.shutdown()


def test_labels_png_of_wrong_size_is_a_clear_error(qtbot, tmp_path):
    store.save_labels(tmp_path, np.zeros((5, 5), np.uint8), author="a")
    w = make_widget(qtbot, Answers(), [])
    with pytest.raises(ValueError, match=r"labels.png: label map is 5x5, the capture's cube is 30x40"):
        w.open(tmp_path, None, shape=(H, W))
    w.shutdown()


def test_failed_background_autosave_reaches_the_error_sink(qtbot, tmp_path, monkeypatch):
    errors = []
    w = make_widget(qtbot, Answers(), errors)
    w.open(tmp_path, None, shape=(H, W))
    paint(qtbot, w, 3, 3)

    def disk_full(path, data, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "atomic_write", disk_full)
    w.autosave_async()
    qtbot.waitUntil(lambda: bool(errors), timeout=30_000)
    assert "No space left" in str(errors[0])
    assert w.session.needs_autosave  # it will be tried again on the next tick
    monkeypatch.undo()
    w.autosave_async()
    w.wait_autosave()
    assert store.recovery_pending(tmp_path)
    w.shutdown()
