"""core.labels.editor / label_history / label_store: history positions, bounded fills, provenance files."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from core.labels import store
from core.labels.editor import LabelEditor
from core.labels.history import UndoHistory


def test_state_id_recognises_the_saved_map_after_undo_and_redo():
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    start = ed.state_id
    ed.stroke([(5, 5)])
    saved = ed.state_id
    assert saved != start
    ed.stroke([(10, 10)])
    assert ed.state_id != saved
    ed.undo()
    assert ed.state_id == saved
    ed.undo()
    assert ed.state_id == start
    ed.redo()
    assert ed.state_id == saved
    ed.stroke([(15, 15)])  # a new branch: never equal to an older state
    assert ed.state_id not in (start, saved)


def test_state_id_below_dropped_steps_is_not_the_start_state():
    ed = LabelEditor(np.zeros((20, 20), np.uint8), max_undo=2)
    start = ed.state_id
    for c in (2, 8, 14):
        ed.stroke([(5, c)])
    assert ed.undo_depth == 2
    ed.undo()
    ed.undo()
    assert not ed.can_undo and ed.labels.any()  # the first stroke can no longer be undone
    assert ed.state_id != start  # so the map must not look like the one the editor started from


def test_history_listeners_see_stacks_already_changed():
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    seen = []
    ed.history_listeners.append(lambda: seen.append((ed.can_undo, ed.can_redo)))
    # content listeners run mid-stroke too; they must see the stacks as they are after undo
    content = []
    ed.listeners.append(lambda rect: content.append((ed.can_undo, ed.can_redo)))
    ed.stroke([(5, 5), (5, 10)])
    ed.undo()
    ed.redo()
    assert seen == [(True, False), (False, True), (True, False)]
    assert content[-2:] == [(False, True), (True, False)]


def test_undo_keeps_at_least_100_steps_and_full_image_diffs_are_compact():
    h, w = 300, 400
    ed = LabelEditor(np.zeros((h, w), np.uint8))
    assert ed.history.max_steps >= 100
    for i in range(100):
        ed.flood_fill(0, 0, class_id=1 + i % 5)  # every step changes every pixel
    assert ed.undo_depth == 100
    assert ed.undo_nbytes() < 0.01 * 100 * 2 * h * w  # under 1 % of raw before/after patches
    for _ in range(100):
        ed.undo()
    assert not ed.labels.any() and ed.counts()[1] == 0


def test_undo_history_rejects_zero_steps():
    with pytest.raises(ValueError, match="max_undo"):
        UndoHistory(0)


def test_fill_is_bounded_by_labels_and_invalid_pixels():
    labels = np.zeros((10, 12), np.uint8)
    labels[:, 6] = 3  # a labelled wall
    valid = np.ones((10, 12), bool)
    valid[4, :6] = False  # a row of invalid (saturated) pixels across the left part
    ed = LabelEditor(labels)
    ed.valid = valid
    ed.active_class = 2
    ed.flood_fill(1, 1)
    expected = labels.copy()
    expected[:4, :6] = 2
    assert np.array_equal(ed.labels, expected)  # stopped by the wall and by the invalid row
    ed.flood_fill(4, 2)  # seeding on an invalid pixel fills nothing
    assert np.array_equal(ed.labels, expected)
    assert ed.labels[4, 2] == 0


def test_a_fill_over_half_the_map_asks_first():
    ed = LabelEditor(np.zeros((10, 10), np.uint8))
    ed.active_class = 1
    asked = []
    ed.flood_fill(0, 0, confirm=lambda n: asked.append(n) or False)
    assert asked == [100] and not ed.labels.any() and not ed.can_undo
    ed.flood_fill(0, 0, confirm=lambda n: True)
    assert (ed.labels == 1).all()
    small = LabelEditor(np.zeros((10, 10), np.uint8))
    small.brush_diameter = 1
    small.stroke([(0, 4), (9, 4)])  # wall: the left part is 40 px, under half
    small.flood_fill(0, 0, class_id=2, confirm=lambda n: pytest.fail("asked for a small fill"))
    assert (small.labels[:, :3] == 2).all()


def test_prediction_indices_count_what_would_be_replaced():
    labels = np.zeros((4, 4), np.uint8)
    labels[0, :2] = 3
    pred = np.full((4, 4), 1, np.uint8)
    pred[0, 0] = 3  # agrees with the existing label: not a change
    ed = LabelEditor(labels)
    idx = ed.prediction_indices(pred)
    assert idx.size == 15 and ed.labelled_among(idx) == 1


def test_saved_files_are_readable_by_other_accounts(tmp_path):
    old = os.umask(0o022)
    try:
        store.save_labels(tmp_path, np.ones((4, 4), np.uint8), author="a")
        store.write_recovery(tmp_path, np.ones((4, 4), np.uint8))
    finally:
        os.umask(old)
    for name in ("labels.png", "meta.json", ".labels.recovery.png"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_saved_files_follow_a_group_writable_umask(tmp_path):
    old = os.umask(0o002)
    try:
        store.save_labels(tmp_path, np.ones((4, 4), np.uint8), author="a")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "labels.png").stat().st_mode) == 0o664


def test_set_aside_recovery_never_overwrites(tmp_path):
    assert store.set_aside_recovery(tmp_path) is None
    first = store.write_recovery(tmp_path, np.ones((3, 3), np.uint8))
    a = store.set_aside_recovery(tmp_path, why="declined")
    store.write_recovery(tmp_path, np.full((3, 3), 2, np.uint8))
    b = store.set_aside_recovery(tmp_path, why="declined")
    assert a != b and a.parent == b.parent == tmp_path / "recovered" and not first.exists()
    assert ":" not in a.name and a.read_bytes() != b.read_bytes()


def test_damaged_recovery_is_a_dataset_error_naming_the_file(tmp_path):
    path = store.write_recovery(tmp_path, np.ones((30, 30), np.uint8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"\.labels\.recovery\.png: cannot read label PNG"):
        store.read_recovery(tmp_path)
