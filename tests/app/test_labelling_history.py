"""Undo / Redo enabled state and label content always true to the stacks (real widget, keys and mouse).

Every sequence of up to 8 strokes, Ctrl+Z and Ctrl+Shift+Z is played on the
widget and on a plain model (a list of maps and a redo list); after each step the
actions' enabled state, the label map and the unsaved marker must match it.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6 import QtCore

from app.application import create_application
from app.labelling import prompts
from app.labelling.widget import LabellingWidget

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier
SHIFT = QtCore.Qt.KeyboardModifier.ShiftModifier
H, W, D = 24, 32, 3

# a stroke: (class 1..5, row) -> a horizontal line of brush diameter 3 across the map
strokes = st.tuples(st.integers(1, 5), st.integers(0, H - 1))
ops = st.lists(st.one_of(st.tuples(st.just("stroke"), strokes), st.just(("undo",)), st.just(("redo",))),
               max_size=8)


def painted(labels: np.ndarray, class_id: int, row: int) -> np.ndarray:
    """Reference: a stroke from (row, 2) to (row, W - 3) with a 3 px brush (pixel centres within 1.5 px)."""
    out = labels.copy()
    rows, cols = np.mgrid[0:H, 0:W]
    dc = np.clip(cols, 2, W - 3) - cols
    out[(rows - row) ** 2 + dc**2 <= (D / 2) ** 2] = class_id
    return out


@pytest.fixture(scope="module")
def widget(tmp_path_factory):
    create_application([])
    w = LabellingWidget(restore_prompt=lambda parent, folder: True,
                        save_prompt=lambda parent, folder: prompts.DISCARD, error_sink=lambda exc: None)
    w.resize(700, 500)
    w.show()
    w.activateWindow()
    w.tmp = tmp_path_factory.mktemp("history")
    w.runs = 0
    yield w
    w.shutdown()
    w.close()
    w.deleteLater()


def check(w, done: list[np.ndarray], undone: list[np.ndarray], saved_at: np.ndarray) -> None:
    assert w.actions_by_name["undo"].isEnabled() == (len(done) > 1)
    assert w.actions_by_name["redo"].isEnabled() == bool(undone)
    assert np.array_equal(w.session.editor.labels, done[-1])
    assert np.array_equal(w.canvas.displayed_labels(), done[-1])
    dirty = not np.array_equal(done[-1], saved_at)
    assert w.actions_by_name["save"].isEnabled() == dirty == w.isWindowModified()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=ops)
def test_undo_redo_state_follows_every_sequence(qtbot, widget, sequence):
    widget.runs += 1
    widget.activateWindow()
    folder = widget.tmp / f"run{widget.runs}"
    folder.mkdir()
    widget.open(folder, None, shape=(H, W))
    widget.brush_spin.setValue(D)
    vp = widget.canvas.viewport()
    done = [np.zeros((H, W), np.uint8)]  # model: maps after each kept step; the last is the current one
    undone: list[np.ndarray] = []
    check(widget, done, undone, done[0])
    for op in sequence:
        if op[0] == "stroke":
            class_id, row = op[1]
            qtbot.keyClick(widget.canvas, getattr(QtCore.Qt.Key, f"Key_{class_id}"))
            qtbot.mousePress(vp, LEFT, NOMOD, widget.canvas.image_to_widget(row + 0.5, 2.5))
            qtbot.mouseMove(vp, widget.canvas.image_to_widget(row + 0.5, W - 2.5))
            qtbot.mouseRelease(vp, LEFT, NOMOD, widget.canvas.image_to_widget(row + 0.5, W - 2.5))
            after = painted(done[-1], class_id, row)
            if not np.array_equal(after, done[-1]):  # a stroke that changes nothing is no step
                done.append(after)
                undone.clear()
        elif op[0] == "undo":
            qtbot.keyClick(widget.canvas, QtCore.Qt.Key.Key_Z, CTRL)
            if len(done) > 1:
                undone.append(done.pop())
        else:
            qtbot.keyClick(widget.canvas, QtCore.Qt.Key.Key_Z, CTRL | SHIFT)
            if undone:
                done.append(undone.pop())
        check(widget, done, undone, np.zeros((H, W), np.uint8))
    widget.close_session()


def test_saving_is_not_an_undo_barrier(qtbot, tmp_path):
    create_application([])
    w = LabellingWidget(save_prompt=lambda parent, folder: prompts.DISCARD, error_sink=pytest.fail)
    qtbot.addWidget(w)
    w.show()
    w.activateWindow()  # shortcuts act in the active window
    qtbot.waitUntil(w.isActiveWindow)
    w.open(tmp_path, None, shape=(H, W))
    w.brush_spin.setValue(1)
    for i in range(120):
        w.session.editor.stroke([(i % H, i % W)])
        w.select_class(1 + i % 5)
    assert w.save() is not None
    assert not w.isWindowModified() and not w.actions_by_name["save"].isEnabled()
    assert w.actions_by_name["undo"].isEnabled()
    saved = w.session.editor.labels.copy()
    depth = w.session.editor.undo_depth
    assert depth >= 110
    for _ in range(100):
        qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_Z, CTRL)
    assert w.session.editor.undo_depth == depth - 100 and w.isWindowModified()
    for _ in range(100):
        qtbot.keyClick(w.canvas, QtCore.Qt.Key.Key_Z, CTRL | SHIFT)
    assert np.array_equal(w.session.editor.labels, saved)
    assert not w.isWindowModified()  # back at the saved state: nothing unsaved
    w.shutdown()
