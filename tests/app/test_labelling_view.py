"""Viewer conventions of the labelling canvas (napari, QuPath, 3D Slicer): keys, zoom, pan, cursor, fills.

Real widgets and real key / mouse / wheel events (pytest-qt, offscreen).
"""
from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtGui

from app.application import create_application
from app.labelling import Prediction, prompts
from app.labelling.widget import LabellingWidget
from app.labelling import canvas as cv

LEFT = QtCore.Qt.MouseButton.LeftButton
MIDDLE = QtCore.Qt.MouseButton.MiddleButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier
K = QtCore.Qt.Key
H, W = 40, 60


@pytest.fixture
def widget(qtbot, tmp_path):
    create_application([])
    w = LabellingWidget(save_prompt=lambda parent, folder: prompts.DISCARD, error_sink=pytest.fail)
    w.asked = []
    w.answer = True
    w.confirm_prompt = lambda parent, title, text: w.asked.append(text) or w.answer
    qtbot.addWidget(w)
    w.resize(900, 600)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    rgb = np.full((H, W, 3), 200, np.uint8)  # pale tissue
    valid = np.ones((H, W), bool)
    valid[:, 40] = False  # a column of saturated pixels
    w.open(tmp_path, rgb, author="Dr. View", valid=valid)
    yield w
    w.shutdown()


def key(qtbot, w, k, modifier=NOMOD):
    qtbot.keyClick(w.canvas, k, modifier)


def at(w, row, col):
    return w.canvas.image_to_widget(row + 0.5, col + 0.5)


def hover(qtbot, w, row, col):
    """Move the mouse over pixel (row, col) with no button; pyqtgraph drops moves < 10 ms apart.

    Two moves: a move to where the (test) mouse already is produces no event.
    """
    for dx in (3, 0):
        qtbot.wait(12)
        qtbot.mouseMove(w.canvas.viewport(), at(w, row, col) + QtCore.QPoint(dx, 0))


def view_range(w):
    (x0, x1), (y0, y1) = w.canvas.view.viewRange()
    return x0, x1, y0, y1


def fits(w) -> bool:
    """The whole image is in view and fills it along one axis (padding 2 %)."""
    x0, x1, y0, y1 = view_range(w)
    inside = x0 <= 0 and y0 <= 0 and x1 >= W and y1 >= H
    tight = (x1 - x0) <= W * 1.1 or (y1 - y0) <= H * 1.1
    return inside and tight


def test_zoom_to_fit_key_and_toolbar_button_and_on_reopen(qtbot, widget, tmp_path):
    assert fits(widget)
    widget.canvas.view.scaleBy((0.25, 0.25))  # zoomed in on the centre
    widget.canvas.view.translateBy((15, 10))
    assert not fits(widget)
    key(qtbot, widget, K.Key_F)
    assert fits(widget)
    widget.canvas.view.scaleBy((0.25, 0.25))
    fit_button = widget.toolbar.widgetForAction(widget.actions_by_name["fit"])
    qtbot.mouseClick(fit_button, LEFT)
    assert fits(widget)
    widget.canvas.view.scaleBy((0.25, 0.25))
    widget.open(tmp_path, None, shape=(H, W))  # reopening a capture fits it
    assert fits(widget)


def test_scroll_zooms_about_the_mouse(qtbot, widget):
    before = view_range(widget)
    pos = QtCore.QPointF(at(widget, 20, 30))
    glob = QtCore.QPointF(widget.canvas.viewport().mapToGlobal(pos.toPoint()))
    event = QtGui.QWheelEvent(pos, glob, QtCore.QPoint(0, 0), QtCore.QPoint(0, 240), QtCore.Qt.MouseButton.NoButton, NOMOD,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtCore.QCoreApplication.sendEvent(widget.canvas.viewport(), event)
    after = view_range(widget)
    assert after[1] - after[0] < 0.9 * (before[1] - before[0])  # zoomed in
    assert after[0] <= 30 <= after[1] and after[2] <= 20 <= after[3]  # about the mouse


def test_middle_drag_and_space_drag_pan_without_painting(qtbot, widget):
    vp = widget.canvas.viewport()
    widget.canvas.view.scaleBy((0.5, 0.5))
    for press_button, hold_space in ((MIDDLE, False), (LEFT, True)):
        before = view_range(widget)
        if hold_space:
            qtbot.keyPress(widget.canvas, K.Key_Space)
            assert widget.canvas.space_held
        start = at(widget, 20, 30)
        qtbot.mousePress(vp, press_button, NOMOD, start)
        for dx in range(0, 80, 8):
            qtbot.wait(12)  # pyqtgraph drops scene moves < 10 ms apart (a real hand is slower)
            qtbot.mouseMove(vp, start + QtCore.QPoint(dx, 0))
        qtbot.mouseRelease(vp, press_button, NOMOD, start + QtCore.QPoint(80, 0))
        if hold_space:
            qtbot.keyRelease(widget.canvas, K.Key_Space)
            assert not widget.canvas.space_held
        after = view_range(widget)
        assert after[0] < before[0] - 1, (press_button, hold_space)  # dragged right: the view moved left
        assert not widget.session.editor.labels.any() and not widget.session.editor.can_undo
    # and without Space the same left drag paints again
    qtbot.mousePress(vp, LEFT, NOMOD, at(widget, 20, 30))
    qtbot.mouseRelease(vp, LEFT, NOMOD, at(widget, 20, 30))
    assert widget.session.editor.labels.any()


def test_brush_size_keys_show_on_screen_and_in_cursor(qtbot, widget):
    widget.brush_spin.setValue(10)
    hover(qtbot, widget, 20, 20)
    key(qtbot, widget, K.Key_BracketRight)
    assert widget.canvas.hud.isVisible() and "Brush 12 px" in widget.canvas.hud.text()
    key(qtbot, widget, K.Key_BracketLeft)
    key(qtbot, widget, K.Key_BracketLeft)
    assert "Brush 8 px" in widget.canvas.hud.text()
    assert widget.canvas.cursor.rect().width() == pytest.approx(8)


def test_number_keys_pick_classes_and_zero_erases(qtbot, widget):
    key(qtbot, widget, K.Key_3)
    assert widget.session.editor.active_class == 3 and widget.canvas.tool == cv.BRUSH
    assert "3  Venous blood" in widget.badge.name.text()
    assert widget.badge.swatch.pixmap().width() >= 24  # a large swatch
    colour = widget.badge.swatch.pixmap().toImage().pixelColor(12, 12)
    from core.classes import class_table

    assert (colour.red(), colour.green(), colour.blue()) == tuple(class_table().colour(3, "thesis"))
    assert "3 Venous blood" in widget.canvas.hud_text()
    key(qtbot, widget, K.Key_0)
    assert widget.canvas.tool == cv.ERASER and "eraser" in widget.badge.name.text()
    key(qtbot, widget, K.Key_5)
    assert widget.canvas.tool == cv.BRUSH and widget.session.editor.active_class == 5


def test_cursor_names_the_class_and_the_eraser_outline_is_two_tone(qtbot, widget):
    key(qtbot, widget, K.Key_2)
    hover(qtbot, widget, 20, 20)
    cursor = widget.canvas.cursor
    assert cursor.visible and "2 Tumour" in cursor.label.toPlainText()
    key(qtbot, widget, K.Key_E)
    hover(qtbot, widget, 21, 21)
    outer, inner = cursor.colours()
    assert cursor.visible and "eraser" in cursor.label.toPlainText()
    assert sum(outer) < 100 and sum(inner) > 600  # dark ring under a white one: visible on pale tissue


def test_h_hides_labels_and_opacity_keys(qtbot, widget):
    assert widget.canvas.label_item.isVisible()
    key(qtbot, widget, K.Key_H)
    assert not widget.canvas.label_item.isVisible() and "hidden" in widget.canvas.hud.text()
    key(qtbot, widget, K.Key_H)
    assert widget.canvas.label_item.isVisible()
    start = widget.canvas.label_item.opacity()
    key(qtbot, widget, K.Key_Period)
    assert widget.canvas.label_item.opacity() == pytest.approx(start + 0.1)
    key(qtbot, widget, K.Key_Comma)
    key(qtbot, widget, K.Key_Comma)
    assert widget.canvas.label_item.opacity() == pytest.approx(start - 0.1)


def test_fill_stays_inside_labels_and_valid_pixels_and_large_fills_ask(qtbot, widget):
    key(qtbot, widget, K.Key_1)
    widget.brush_spin.setValue(3)
    vp = widget.canvas.viewport()
    qtbot.mousePress(vp, LEFT, NOMOD, at(widget, 0, 10))
    qtbot.mouseMove(vp, at(widget, 39, 10))
    qtbot.mouseRelease(vp, LEFT, NOMOD, at(widget, 39, 10))  # a wall at columns 9..11
    key(qtbot, widget, K.Key_G)
    assert widget.canvas.tool == cv.FILL
    key(qtbot, widget, K.Key_2)
    qtbot.mouseClick(vp, LEFT, NOMOD, at(widget, 20, 25))  # between the wall and the invalid column 40
    labels = widget.session.editor.labels
    assert (labels[:, 12:40] == 2).all() and not (labels[:, 40:] == 2).any() and not (labels[:, :9] == 2).any()
    assert widget.asked == []  # 28 of 60 columns: under half
    widget.answer = False
    widget.session.editor.undo()
    widget.session.editor.undo()  # no wall now: a fill would cover 40 of 60 columns
    qtbot.mouseClick(vp, LEFT, NOMOD, at(widget, 20, 25))
    assert len(widget.asked) == 1 and "1,600 pixels" in widget.asked[0]
    assert not widget.session.editor.labels.any()  # declined
    widget.answer = True
    qtbot.mouseClick(vp, LEFT, NOMOD, at(widget, 20, 25))
    assert (widget.session.editor.labels[:, :40] == 2).all() and len(widget.asked) == 2


def test_start_from_prediction_asks_before_replacing_labels_and_counts(qtbot, widget):
    key(qtbot, widget, K.Key_4)
    widget.brush_spin.setValue(1)
    widget.session.editor.stroke([(5, 0), (5, 59)])  # 60 labelled pixels of class 4
    pred = np.full((H, W), 1, np.uint8)
    widget.set_prediction(Prediction(pred, None, {"name": "m", "version": "1", "sha256": "0" * 64}))
    widget.answer = False
    widget.start_from_prediction()
    assert len(widget.asked) == 1
    assert "2,400 pixels" in widget.asked[0] and "60 of them are labelled" in widget.asked[0]
    assert (widget.session.editor.labels == 1).sum() == 0  # declined: nothing changed
    widget.answer = True
    widget.start_from_prediction()
    assert (widget.session.editor.labels == 1).all()
    # on an empty map nothing is replaced: no question
    widget.session.editor.undo()
    widget.session.editor.undo()
    widget.start_from_prediction()
    assert len(widget.asked) == 2 and (widget.session.editor.labels == 1).all()
