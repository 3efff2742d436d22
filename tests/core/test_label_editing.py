"""core.labels.geometry, core.labels.editor, core.labels.store: brush, eraser, fills, preserve-labels, undo diffs, recovery and atomic save."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from core import fileio
from core.labels import editor as le
from core.labels import geometry as geo
from core.labels import store
from core.errors import DatasetError
from core.labels.editor import LabelEditor
from core.labels.geometry import EMPTY_RECT, Rect


def brute_capsule(shape, p0, p1, d):
    """Reference: pixel centres within d/2 of the segment, one pixel at a time."""
    h, w = shape
    out = np.zeros(shape, bool)
    (r0, c0), (r1, c1) = p0, p1
    for r in range(h):
        for c in range(w):
            dr, dc = r1 - r0, c1 - c0
            L2 = dr * dr + dc * dc
            t = 0.0 if L2 == 0 else min(1.0, max(0.0, ((r - r0) * dr + (c - c0) * dc) / L2))
            if (r - (r0 + t * dr)) ** 2 + (c - (c0 + t * dc)) ** 2 <= (d / 2) ** 2:
                out[r, c] = True
    return out


def test_single_click_paints_exactly_the_disc():
    ed = LabelEditor(np.zeros((40, 50), np.uint8))
    ed.active_class = 2
    ed.brush_diameter = 9
    rect = ed.stroke([(20, 25)])
    fp = geo.disc_footprint(9)
    expected = np.zeros((40, 50), bool)
    expected[16:25, 21:30] = fp
    assert np.array_equal(ed.labels == 2, expected)
    assert rect == Rect(16, 21, 25, 30)
    assert ed.counts()[2] == int(fp.sum()) == 69


def test_fast_stroke_leaves_no_gap_and_matches_reference():
    shape = (30, 60)
    ed = LabelEditor(np.zeros(shape, np.uint8))
    ed.brush_diameter = 5
    ed.active_class = 1
    ed.stroke([(5, 3), (25, 55)])  # one long jump, as from a fast mouse move
    assert np.array_equal(ed.labels == 1, brute_capsule(shape, (5, 3), (25, 55), 5))
    # every column between the ends is painted: no gaps
    assert (ed.labels[:, 3:56] == 1).any(axis=0).all()


def test_eraser_has_its_own_size():
    ed = LabelEditor(np.full((30, 30), 3, np.uint8))
    ed.brush_diameter = 21
    ed.eraser_diameter = 3
    ed.stroke([(15, 15)], tool=le.ERASER)
    assert np.array_equal(ed.labels == 0, brute_capsule((30, 30), (15, 15), (15, 15), 3))
    assert ed.counts()[3] == 900 - 9


def test_preserve_labels_only_writes_unlabelled_or_active():
    base = np.zeros((20, 20), np.uint8)
    base[:, :10] = 4  # a neighbour's vessel label on the left half
    ed = LabelEditor(base)
    ed.preserve_labels = True
    ed.active_class = 2
    ed.brush_diameter = 15
    ed.stroke([(10, 10)])
    assert (ed.labels[:, :10] == 4).all()  # untouched
    under = brute_capsule((20, 20), (10, 10), (10, 10), 15)
    assert np.array_equal(ed.labels[:, 10:] == 2, under[:, 10:])
    # the eraser in preserve mode removes only the active class
    ed.eraser_diameter = 40
    ed.stroke([(10, 10)], tool=le.ERASER)
    assert (ed.labels[:, :10] == 4).all() and (ed.labels[:, 10:] == 0).all()
    ed.preserve_labels = False
    ed.stroke([(10, 10)], tool=le.ERASER)
    assert (ed.labels == 0).all()


def test_flood_fill_is_contiguous_4_connected_same_class():
    base = np.zeros((10, 10), np.uint8)
    base[5, :] = 1  # a wall splitting the map
    base[2, 2] = 3
    base[7, 7] = 2
    base[6, 6] = 0
    ed = LabelEditor(base)
    ed.active_class = 5
    ed.flood_fill(0, 0)
    expected = base.copy()
    top = base[:5] == 0
    expected[:5][top] = 5
    assert np.array_equal(ed.labels, expected)
    # diagonal neighbours are not connected: fill 7,7 (class 2, single pixel)
    ed.flood_fill(7, 7, class_id=4)
    assert ed.labels[7, 7] == 4 and ed.labels[6, 6] == 0
    # preserve: a region of another class is left alone
    ed.preserve_labels = True
    assert ed.flood_fill(5, 0) == EMPTY_RECT
    assert (ed.labels[5] == 1).all()


def test_flood_fill_does_not_cross_diagonals_or_invalid_pixels():
    base = np.zeros((6, 6), np.uint8)
    base[2, 2] = base[3, 3] = 2  # the same class, touching only at a corner
    ed = LabelEditor(base)
    ed.flood_fill(2, 2, class_id=4)
    assert ed.labels[2, 2] == 4 and ed.labels[3, 3] == 2  # 4-connected: the diagonal is another region
    ed.valid = np.ones((6, 6), bool)
    ed.valid[:, 3] = False  # no tissue in column 3: bounds the fill like another class
    ed.flood_fill(0, 0, class_id=1)
    assert (ed.labels[:, :3][base[:, :3] == 0] == 1).all() and not (ed.labels[:, 3:] == 1).any()
    before = ed.labels.copy()
    assert ed.flood_fill(0, 3, class_id=5) == EMPTY_RECT  # the seed itself is invalid: nothing
    assert np.array_equal(ed.labels, before)


def test_only_the_last_max_undo_steps_are_kept():
    ed = LabelEditor(np.zeros((20, 20), np.uint8), max_undo=3)
    states = []
    for i in range(5):
        ed.stroke([(2 + 3 * i, 10)], tool=le.BRUSH)
        states.append(ed.labels.copy())
    assert ed.undo_depth == 3
    for _ in range(3):
        ed.undo()
    assert not ed.can_undo and np.array_equal(ed.labels, states[1])  # the two oldest steps were dropped


def test_polygon_even_odd_fill():
    ed = LabelEditor(np.zeros((20, 20), np.uint8))
    ed.active_class = 3
    # axis-aligned square covering pixel centres 2.5..7.5 -> rows/cols 2..7
    rect = ed.fill_polygon([(2.0, 2.0), (2.0, 8.0), (8.0, 8.0), (8.0, 2.0)])
    expected = np.zeros((20, 20), bool)
    expected[2:8, 2:8] = True
    assert np.array_equal(ed.labels == 3, expected)
    assert rect == Rect(2, 2, 8, 8)
    # a triangle: check each pixel centre by a barycentric reference
    ed2 = LabelEditor(np.zeros((30, 30), np.uint8))
    tri = [(1.3, 1.1), (28.2, 5.4), (10.7, 27.9)]
    ed2.fill_polygon(tri, class_id=1)
    ys, xs = np.mgrid[0:30, 0:30] + 0.5
    (ay, ax), (by, bx), (cy, cx) = tri
    def side(py, px, qy, qx):
        return (xs - px) * (qy - py) - (ys - py) * (qx - px)
    s1, s2, s3 = side(ay, ax, by, bx), side(by, bx, cy, cx), side(cy, cx, ay, ax)
    inside = ((s1 > 0) & (s2 > 0) & (s3 > 0)) | ((s1 < 0) & (s2 < 0) & (s3 < 0))
    assert np.array_equal(ed2.labels == 1, inside)
    with pytest.raises(ValueError, match="at least 3"):
        ed2.fill_polygon([(0, 0), (1, 1)])


def test_100_undo_then_100_redo_restores_exact_map_with_compact_diffs():
    rng = np.random.default_rng(0)
    h, w = 120, 200
    ed = LabelEditor(np.zeros((h, w), np.uint8), max_undo=150)
    snapshots = [ed.labels.copy()]
    for i in range(100):
        ed.active_class = int(rng.integers(1, 6))
        ed.brush_diameter = int(rng.integers(1, 30))
        op = i % 4
        if op == 3:
            ed.flood_fill(int(rng.integers(h)), int(rng.integers(w)))
        else:
            pts = [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(4)]
            ed.stroke(pts, tool=le.ERASER if op == 2 else le.BRUSH)
        snapshots.append(ed.labels.copy())
    final = ed.labels.copy()
    steps = ed.undo_depth
    assert steps >= 95  # a stroke that changes nothing is no step
    for _ in range(steps):
        ed.undo()
    assert not ed.labels.any()
    assert ed.counts() == {1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
    for _ in range(steps):
        ed.redo()
    assert np.array_equal(ed.labels, final)
    counts = np.bincount(final.ravel(), minlength=6)
    assert ed.counts() == {c: int(counts[c]) for c in range(1, 6)}
    # compact: a diff holds only changed pixels, far below 100 full copies
    assert ed.undo_nbytes() < 100 * h * w


def test_undo_of_a_stroke_is_one_step_and_new_edit_clears_redo():
    ed = LabelEditor(np.zeros((50, 50), np.uint8))
    ed.brush_diameter = 7
    ed.begin_stroke(10, 10)
    for c in range(11, 40):
        ed.stroke_to(10, c)
    ed.end_stroke()
    assert ed.undo_depth == 1
    rect = ed.undo()
    assert rect.top == 7 and rect.bottom == 14 and not ed.labels.any()
    ed.stroke([(30, 30)])
    assert not ed.can_redo


def test_listeners_get_the_touched_rectangle():
    ed = LabelEditor(np.zeros((100, 100), np.uint8))
    rects = []
    ed.listeners.append(rects.append)
    ed.brush_diameter = 5
    ed.begin_stroke(50, 50)
    ed.stroke_to(50, 60)
    ed.end_stroke()
    assert rects[0] == Rect(48, 48, 53, 53)
    assert rects[1] == Rect(48, 52, 53, 63)  # only the newly painted pixels


def test_copy_prediction_with_threshold_and_preserve():
    pred = np.array([[1, 2, 3], [4, 5, 0]], np.uint8)
    probs = np.zeros((2, 3, 5), np.float32)
    probs[..., 0] = [[0.9, 0.4, 0.95], [0.6, 0.2, 0.99]]
    base = np.zeros((2, 3), np.uint8)
    base[0, 2] = 1
    ed = LabelEditor(base)
    ed.preserve_labels = True
    ed.copy_prediction(pred, probs, threshold=0.5)
    assert ed.labels.tolist() == [[1, 0, 1], [4, 0, 0]]
    ed.undo()
    ed.preserve_labels = False
    ed.copy_prediction(pred)
    assert ed.labels.tolist() == [[1, 2, 3], [4, 5, 0]]
    with pytest.raises(ValueError, match="shape"):
        ed.copy_prediction(np.zeros((3, 3), np.uint8))


def test_invalid_settings_raise_clear_errors():
    ed = LabelEditor(np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match="class id"):
        ed.active_class = 9
    with pytest.raises(ValueError, match="diameter"):
        ed.brush_diameter = 0
    with pytest.raises(ValueError, match="2-D"):
        LabelEditor(np.zeros((5,), np.uint8))
    with pytest.raises(ValueError, match="unknown class"):
        LabelEditor(np.full((2, 2), 7, np.uint8))


def test_recovery_roundtrip_and_pending(tmp_path):
    labels = np.random.default_rng(1).integers(0, 6, size=(30, 40), dtype=np.uint8)
    assert store.read_recovery(tmp_path) is None and not store.recovery_pending(tmp_path)
    path = store.write_recovery(tmp_path, labels, info={"author": "dr a"})
    assert path.name == ".labels.recovery.png"
    back, meta = store.read_recovery(tmp_path)
    assert np.array_equal(back, labels) and meta["author"] == "dr a" and "saved" in meta
    assert store.recovery_pending(tmp_path)
    store.save_labels(tmp_path, labels, author="dr a")
    assert not path.exists() and not store.recovery_pending(tmp_path)


def test_save_labels_writes_png_and_merges_meta_with_provenance(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"capture_id": "ID0001C01", "patient": "ID1",
                                                    "labels": {"first_edit": "2026-01-02T03:04:05Z"}}))
    labels = np.zeros((8, 9), np.uint8)
    labels[2:4, 3:7] = 2
    labels[0, 0] = 5
    model = {"name": "demo", "version": "1.0", "sha256": "ab" * 32}
    store.save_labels(tmp_path, labels, author="Dr. B", os_user="drb", first_edit="2026-11-29T05:00:00Z",
                      last_edit="2026-11-29T05:10:00Z", prelabel_model=model, tool_version="9.8.7")
    with Image.open(tmp_path / "labels.png") as im:
        assert im.mode == "P"
        assert np.array_equal(np.asarray(im), labels)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["capture_id"] == "ID0001C01" and meta["patient"] == "ID1"
    got = meta["labels"]
    assert got["author"] == "Dr. B" and got["os_user"] == "drb"
    assert got["first_edit"] == "2026-01-02T03:04:05Z"  # the earliest edit ever is kept
    assert got["last_edit"] == "2026-11-29T05:10:00Z"
    assert got["saved"].endswith("Z") and got["tool_version"] == "9.8.7"
    assert got["from_prediction"] is True and got["prelabel_model"] == model
    assert got["counts"] == {"1": 0, "2": 8, "3": 0, "4": 0, "5": 1}
    # labels drawn by hand: no model
    store.save_labels(tmp_path, labels, author="Dr. B")
    again = json.loads((tmp_path / "meta.json").read_text())["labels"]
    assert again["from_prediction"] is False and again["prelabel_model"] is None
    assert again["last_edit"] == "2026-11-29T05:10:00Z"  # kept when this save has none
    with pytest.raises(ValueError, match="sha256"):
        store.save_labels(tmp_path, labels, author="a", prelabel_model={"name": "x", "version": "1"})


def test_interrupted_save_keeps_previous_labels(tmp_path, monkeypatch):
    old = np.ones((6, 6), np.uint8)
    store.save_labels(tmp_path, old, author="a")
    before = (tmp_path / "labels.png").read_bytes()
    written = []

    def failing_replace(src, dst):
        written.append(os.path.getsize(src))  # the temp file was fully written
        raise OSError("disk pulled out")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk pulled"):
        store.save_labels(tmp_path, np.full((6, 6), 2, np.uint8), author="a")
    assert written and written[0] > 0
    assert (tmp_path / "labels.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.png", "meta.json"]  # no temp left


def test_save_labels_rejects_bad_input(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        store.save_labels(tmp_path / "nope", np.zeros((2, 2), np.uint8), author="a")
    with pytest.raises(ValueError, match="author"):
        store.save_labels(tmp_path, np.zeros((2, 2), np.uint8), author=" ")
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(DatasetError, match="meta.json: not valid JSON"):
        store.save_labels(tmp_path, np.zeros((2, 2), np.uint8), author="a")
