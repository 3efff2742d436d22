"""Labelling mode driven by real mouse and key events (pytest-qt, offscreen)."""
from __future__ import annotations

import getpass

import numpy as np
import pytest
from PySide6 import QtCore

from app.application import create_application
from app.build_info import app_version
from app.labelling import Prediction
from app.labelling.widget import LabellingWidget
from app.labelling import canvas as cv
from app.labelling import prompts

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier
H, W = 40, 60


def capsule(p0, p1, d, shape=(H, W)):
    """Pixels whose centre lies within d/2 of the segment p0 -> p1 (independent reference)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    (r0, c0), (r1, c1) = p0, p1
    dr, dc = r1 - r0, c1 - c0
    length2 = dr * dr + dc * dc
    t = np.zeros(shape) if length2 == 0 else np.clip(((rows - r0) * dr + (cols - c0) * dc) / length2, 0, 1)
    return (rows - (r0 + t * dr)) ** 2 + (cols - (c0 + t * dc)) ** 2 <= (d / 2) ** 2


@pytest.fixture
def widget(qtbot, tmp_path):
    create_application([])
    errors = []
    w = LabellingWidget(restore_prompt=lambda parent, folder: True, save_prompt=lambda parent, folder: prompts.DISCARD,
                        error_sink=errors.append)
    w.errors = errors
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    w.open(tmp_path, rgb, author="Dr. Test")
    yield w
    w.shutdown()


def at(w, row, col):
    """Viewport position of the centre of pixel (row, col)."""
    return w.canvas.image_to_widget(row + 0.5, col + 0.5)


def drag(qtbot, w, pixels, modifier=NOMOD):
    vp = w.canvas.viewport()
    qtbot.mousePress(vp, LEFT, modifier, at(w, *pixels[0]))
    for p in pixels[1:]:
        qtbot.mouseMove(vp, at(w, *p))
    qtbot.mouseRelease(vp, LEFT, modifier, at(w, *pixels[-1]))


def click(qtbot, w, pixel):
    vp = w.canvas.viewport()
    qtbot.mouseClick(vp, LEFT, NOMOD, at(w, *pixel))


def key(qtbot, w, k, modifier=NOMOD):
    qtbot.keyClick(w.canvas, k, modifier)


def labels(w):
    return w.session.editor.labels


def test_stroke_changes_exactly_the_pixels_under_the_brush(qtbot, widget):
    widget.brush_spin.setValue(7)
    key(qtbot, widget, QtCore.Qt.Key.Key_2)
    drag(qtbot, widget, [(10, 10), (12, 30), (30, 45)])
    expected = capsule((10, 10), (12, 30), 7) | capsule((12, 30), (30, 45), 7)
    assert np.array_equal(labels(widget) == 2, expected)
    assert not labels(widget)[~expected].any()
    # the view shows the same map, and the class counts follow live
    assert np.array_equal(widget.canvas.displayed_labels(), labels(widget))
    assert f"{int(expected.sum()):,} px" in widget.class_buttons[2].text()


def test_single_click_paints_one_disc_and_eraser_uses_its_own_size(qtbot, widget):
    key(qtbot, widget, QtCore.Qt.Key.Key_1)
    widget.brush_spin.setValue(15)
    drag(qtbot, widget, [(20, 30)])
    assert np.array_equal(labels(widget) == 1, capsule((20, 30), (20, 30), 15))
    key(qtbot, widget, QtCore.Qt.Key.Key_E)
    assert widget.canvas.tool == cv.ERASER
    widget.eraser_spin.setValue(3)
    drag(qtbot, widget, [(20, 30)])
    assert np.array_equal(labels(widget) == 1, capsule((20, 30), (20, 30), 15) & ~capsule((20, 30), (20, 30), 3))
    assert widget.session.editor.brush_diameter == 15


def test_brush_size_keys_and_alt_drag(qtbot, widget):
    widget.brush_spin.setValue(10)
    key(qtbot, widget, QtCore.Qt.Key.Key_BracketRight)
    assert widget.session.editor.brush_diameter == 12 and widget.brush_spin.value() == 12
    key(qtbot, widget, QtCore.Qt.Key.Key_BracketLeft)
    key(qtbot, widget, QtCore.Qt.Key.Key_BracketLeft)
    assert widget.session.editor.brush_diameter == 8
    vp = widget.canvas.viewport()
    start = at(widget, 20, 20)
    alt = QtCore.Qt.KeyboardModifier.AltModifier
    qtbot.mousePress(vp, LEFT, alt, start)
    qtbot.mouseMove(vp, start + QtCore.QPoint(40, 0))
    qtbot.mouseRelease(vp, LEFT, alt, start + QtCore.QPoint(40, 0))
    assert widget.session.editor.brush_diameter == 28  # 8 + 40 screen px / 2
    assert not labels(widget).any()  # resizing paints nothing
    # the cursor shows the footprint: a circle of the brush diameter in image pixels
    assert widget.canvas.cursor.visible
    assert widget.canvas.cursor.rect().width() == pytest.approx(28)


def test_flood_fill_is_contiguous_and_same_class(qtbot, widget):
    key(qtbot, widget, QtCore.Qt.Key.Key_3)
    widget.brush_spin.setValue(3)
    drag(qtbot, widget, [(0, 25), (39, 25)])  # a wall across the map
    wall = labels(widget).copy()
    key(qtbot, widget, QtCore.Qt.Key.Key_G)
    key(qtbot, widget, QtCore.Qt.Key.Key_5)
    click(qtbot, widget, (20, 5))
    expected = wall.copy()
    left = np.zeros((H, W), bool)
    left[:, :24] = True  # the wall of width 3 around column 25 covers columns 24..26
    expected[left & (wall == 0)] = 5
    assert np.array_equal(labels(widget), expected)
    assert (labels(widget)[:, 27:] == 0).all()


def test_polygon_double_click_enter_and_escape(qtbot, widget):
    key(qtbot, widget, QtCore.Qt.Key.Key_P)
    key(qtbot, widget, QtCore.Qt.Key.Key_4)
    vp = widget.canvas.viewport()
    # vertices on pixel corners: a sub-pixel mouse rounding cannot move an edge across a pixel centre
    corners = [(5, 5), (5, 20), (20, 20), (20, 5)]
    for y, x in corners[:-1]:
        qtbot.mouseClick(vp, LEFT, NOMOD, widget.canvas.image_to_widget(y, x))
    assert len(widget.canvas.polygon_vertices) == 3
    qtbot.mouseDClick(vp, LEFT, NOMOD, widget.canvas.image_to_widget(*corners[-1]))
    expected = np.zeros((H, W), bool)
    expected[5:20, 5:20] = True
    assert np.array_equal(labels(widget) == 4, expected)
    assert widget.session.editor.undo_depth == 1 and widget.canvas.polygon_vertices == []
    # Enter closes too
    key(qtbot, widget, QtCore.Qt.Key.Key_1)
    for c in [(25, 30), (25, 50), (35, 40)]:
        click(qtbot, widget, c)
    key(qtbot, widget, QtCore.Qt.Key.Key_Return)
    assert (labels(widget) == 1).sum() > 50 and widget.canvas.polygon_vertices == []
    # Esc abandons: nothing painted
    before = labels(widget).copy()
    for c in [(30, 2), (30, 10), (38, 6)]:
        click(qtbot, widget, c)
    assert len(widget.canvas.polygon_vertices) == 3
    key(qtbot, widget, QtCore.Qt.Key.Key_Escape)
    assert widget.canvas.polygon_vertices == []
    assert np.array_equal(labels(widget), before)


def test_preserve_labels_toggle(qtbot, widget):
    key(qtbot, widget, QtCore.Qt.Key.Key_4)
    widget.brush_spin.setValue(9)
    drag(qtbot, widget, [(20, 10), (20, 50)])
    vessel = labels(widget) == 4
    widget.preserve_check.setChecked(True)
    key(qtbot, widget, QtCore.Qt.Key.Key_2)
    widget.brush_spin.setValue(21)
    drag(qtbot, widget, [(20, 30)])
    under = capsule((20, 30), (20, 30), 21)
    assert np.array_equal(labels(widget) == 4, vessel)  # the neighbour's label survived
    assert np.array_equal(labels(widget) == 2, under & ~vessel)
    widget.preserve_check.setChecked(False)
    drag(qtbot, widget, [(20, 30)])
    assert np.array_equal(labels(widget) == 2, under)


def test_100_undo_then_100_redo_with_keys_restores_exact_map(qtbot, widget):
    rng = np.random.default_rng(3)
    widget.brush_spin.setValue(5)
    for i in range(100):
        key(qtbot, widget, getattr(QtCore.Qt.Key, f"Key_{1 + i % 5}"))
        p0 = (int(rng.integers(H)), int(rng.integers(W)))
        p1 = (int(rng.integers(H)), int(rng.integers(W)))
        drag(qtbot, widget, [p0, p1])
    final = labels(widget).copy()
    assert widget.session.editor.undo_depth == 100
    for _ in range(100):
        key(qtbot, widget, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert not labels(widget).any() and not widget.canvas.displayed_labels().any()
    for _ in range(100):
        key(qtbot, widget, QtCore.Qt.Key.Key_Z,
            QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(labels(widget), final)
    assert np.array_equal(widget.canvas.displayed_labels(), final)


def test_outline_display_and_opacity(qtbot, widget):
    key(qtbot, widget, QtCore.Qt.Key.Key_1)
    widget.brush_spin.setValue(15)
    drag(qtbot, widget, [(20, 30)])
    widget.display_combo.setCurrentText(cv.OUTLINE)
    shown = widget.canvas.displayed_labels()
    assert shown[20, 30] == 0 and shown.any()  # interior hidden, border drawn
    assert set(np.unique(shown)) == {0, 1}
    drag(qtbot, widget, [(20, 45)])  # edits keep the outline up to date
    full = labels(widget)
    from app.labelling.canvas import _boundary

    assert np.array_equal(widget.canvas.displayed_labels(), np.where(_boundary(full), full, 0))
    widget.opacity_slider.setValue(25)
    assert widget.canvas.label_item.opacity() == pytest.approx(0.25)


def test_start_from_prediction_with_threshold(qtbot, widget):
    pred = np.zeros((H, W), np.uint8)
    pred[:, :30] = 1
    pred[:, 30:] = 2
    probs = np.zeros((H, W, 5), np.float32)
    probs[..., 0] = 0.95
    probs[:, 40:, 0] = 0.5  # low confidence on the right
    model = {"name": "demo", "version": "1.0", "sha256": "abcd1234" * 8}
    widget.set_prediction(Prediction(pred, probs, model=model))
    widget.threshold_spin.setValue(0.8)
    key(qtbot, widget, QtCore.Qt.Key.Key_P, QtCore.Qt.KeyboardModifier.ControlModifier)
    expected = pred.copy()
    expected[:, 40:] = 0
    assert np.array_equal(labels(widget), expected)
    widget.save()
    import json

    meta = json.loads((widget.session.folder / "meta.json").read_text())
    got = meta["labels"]
    assert got["prelabel_model"] == model and got["from_prediction"] is True
    assert got["author"] == "Dr. Test" and got["os_user"] == getpass.getuser()
    assert got["tool_version"] == app_version() and got["tool_version"] != "unknown"
    assert got["first_edit"] <= got["last_edit"] <= got["saved"]  # ISO 8601 UTC strings
    assert got["saved"].endswith("Z") and got["first_edit"].endswith("Z")
    assert got["counts"] == {str(c): int((expected == c).sum()) for c in range(1, 6)}


def test_import_nemesis_ground_truth(qtbot, widget, tmp_path):
    from scipy.io import savemat

    codes = np.full((H, W), 400, np.uint16)  # background
    codes[:10] = 101
    codes[10:20] = 220
    codes[20:25] = 302
    path = tmp_path / "SNAPgtID0018C01_cropped_Pre-processed.mat"
    savemat(path, {"groundTruthMap": codes})
    assert widget.import_nemesis(path)
    assert (labels(widget)[:10] == 1).all() and (labels(widget)[10:20] == 2).all()
    assert (labels(widget)[20:25] == 4).all() and (labels(widget)[25:] == 0).all()
    bad = tmp_path / "SNAPgt_small.mat"
    savemat(bad, {"groundTruthMap": codes[:5]})
    assert not widget.import_nemesis(bad)
    assert "SNAPgt_small.mat" in str(widget.errors[-1]) and "cube is 40x60" in str(widget.errors[-1])
