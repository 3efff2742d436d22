"""View keys and navigation: fit, 1:1, pan, opacity, overlay, contours, outline, view modes, class toggles."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.image_view import OUTLINE_COLOUR, OUTLINE_WIDTH_PX
from tests.support.gui import classify_and_wait, open_and_wait

K = Qt.Key


@pytest.fixture
def classified(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    window.resize(1200, 800)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=30_000)
    return window, result


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window.image_view, key, modifier)


def shown_rect(view):
    return view.view.viewRect()


def test_fit_on_open_fit_key_and_one_to_one(qtbot, classified):
    window, result = classified
    view = window.image_view
    h, w = result.labels.shape
    fitted = shown_rect(view)
    assert fitted.contains(0, 0) and fitted.contains(w, h)  # all of it
    assert fitted.width() <= 1.05 * w or fitted.height() <= 1.05 * h  # as large as the view allows
    view.view.scaleBy((0.25, 0.25))  # zoom in
    assert shown_rect(view).width() < 0.5 * fitted.width()
    press(qtbot, window, K.Key_F)
    assert shown_rect(view).width() == pytest.approx(fitted.width(), rel=0.02)
    press(qtbot, window, K.Key_1, Qt.KeyboardModifier.ControlModifier)
    px_w, px_h = view.view.viewPixelSize()
    assert px_w == pytest.approx(1.0, rel=0.05) and px_h == pytest.approx(1.0, rel=0.05)


def test_reopening_fits_again(qtbot, classified, second_small_raw):
    window, _ = classified
    fitted = shown_rect(window.image_view)
    window.image_view.view.scaleBy((0.2, 0.2))
    open_and_wait(qtbot, window, second_small_raw)
    assert shown_rect(window.image_view).width() == pytest.approx(fitted.width(), rel=0.02)


def _drag(qtbot, view, button, start, end, modifiers=Qt.KeyboardModifier.NoModifier):
    vp = view.viewport()
    for kind, pos, buttons in ((QEvent.Type.MouseButtonPress, start, button), (QEvent.Type.MouseMove, start, button),
                               (QEvent.Type.MouseMove, (start + end) / 2, button),
                               (QEvent.Type.MouseMove, end, button),
                               (QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        event = QMouseEvent(kind, pos, vp.mapToGlobal(pos), button if kind != QEvent.Type.MouseMove else
                            Qt.MouseButton.NoButton, buttons, modifiers)
        QApplication.sendEvent(vp, event)
        qtbot.wait(25)  # pyqtgraph drops mouse moves closer together than its rate limit


def test_middle_drag_and_space_drag_pan(qtbot, classified):
    window, _ = classified
    view = window.image_view
    view.view.scaleBy((0.5, 0.5))
    centre = QPointF(view.viewport().width() / 2, view.viewport().height() / 2)
    before = shown_rect(view)
    _drag(qtbot, view, Qt.MouseButton.MiddleButton, centre, centre + QPointF(120, 0))
    after = shown_rect(view)
    assert after.left() < before.left() - 5  # the image moved right with the mouse
    qtbot.keyPress(view, K.Key_Space)
    assert view.viewport().cursor().shape() == Qt.CursorShape.OpenHandCursor
    _drag(qtbot, view, Qt.MouseButton.LeftButton, centre, centre + QPointF(0, 100))
    qtbot.keyRelease(view, K.Key_Space)
    assert shown_rect(view).top() < after.top() - 5
    assert window.overlay_state.pins == ()  # a space-drag pins nothing


def test_opacity_overlay_contour_keys(qtbot, classified):
    window, _ = classified
    state, item = window.overlay_state, window.image_view.overlay_item
    start = state.opacity
    press(qtbot, window, K.Key_Period)
    assert state.opacity == start + 10 and item.opacity() == pytest.approx((start + 10) / 100)
    press(qtbot, window, K.Key_Comma)
    press(qtbot, window, K.Key_Comma)
    assert state.opacity == start - 10
    press(qtbot, window, K.Key_O)
    assert not state.visible and not item.isVisible() and not window.actions["overlay"].isChecked()
    press(qtbot, window, K.Key_O)
    assert state.visible and item.isVisible()
    press(qtbot, window, K.Key_C)
    assert state.contour and window.actions["contour"].isChecked()


def test_view_mode_key_cycles_and_colour_bar_has_units(qtbot, classified):
    window, result = classified
    bar = window.map_area.colour_bar
    assert not bar.isVisible()  # class map: the legend explains the colours
    press(qtbot, window, K.Key_V)
    assert window.overlay_state.view_mode == "confidence"
    assert bar.isVisible() and bar.title() == "Confidence (max probability, %)"
    press(qtbot, window, K.Key_V)
    assert window.overlay_state.view_mode == "probability" and window.overlay_state.probability_class == 1
    assert bar.title() == "P(Healthy tissue) (%)" and bar.isVisible()
    for _ in range(len(result.model.class_ids)):
        press(qtbot, window, K.Key_V)
    assert window.overlay_state.view_mode == "classes" and not bar.isVisible()


def test_alt_digit_toggles_a_class(qtbot, classified):
    window, result = classified
    press(qtbot, window, K.Key_2, Qt.KeyboardModifier.AltModifier)
    assert window.overlay_state.hidden == {2} and not window.legend.checks[2].isChecked()
    alpha = window.image_view.overlay_item.image[..., 3]
    assert (alpha[result.labels == 2] == 0).all()
    press(qtbot, window, K.Key_2, Qt.KeyboardModifier.AltModifier)
    assert window.overlay_state.hidden == frozenset()


def test_outline_draws_the_tumour_border_only(qtbot, classified):
    window, result = classified
    view = window.image_view
    press(qtbot, window, K.Key_T)
    assert window.overlay_state.outline and window.actions["outline"].isChecked()
    assert view.overlay_item.image is None  # no filled classes
    assert view.outline_item.isVisible() and view.outline_item.pen.widthF() == OUTLINE_WIDTH_PX == 3
    assert view.outline_item.pen.color().name() == OUTLINE_COLOUR
    assert view.outline_item.pen.isCosmetic()  # 3 screen pixels at every zoom
    mask = view.outline_item.data[1:-1, 1:-1]
    assert np.array_equal(mask > 0.5, result.labels == 2)
    view.outline_item.boundingRect()  # builds the path
    assert not view.outline_item.path.isEmpty()
    press(qtbot, window, K.Key_T)
    assert not view.outline_item.isVisible() and view.overlay_item.image is not None


def test_a_fitted_view_stays_fitted_when_resized_until_the_user_zooms(qtbot, classified):
    window, result = classified
    view = window.image_view
    h, w = result.labels.shape
    window.resize(800, 700)
    qtbot.waitUntil(lambda: shown_rect(view).contains(0, 0) and shown_rect(view).contains(w, h), timeout=30_000)
    small = shown_rect(view).width()
    window.resize(1400, 900)
    qtbot.wait(50)
    assert shown_rect(view).contains(0, 0) and shown_rect(view).contains(w, h)
    # What a wheel turn does in pyqtgraph: a manual range change, then the zoom.
    view.view.sigRangeChangedManually.emit(view.view.state["mouseEnabled"])
    view.view.scaleBy((0.5, 0.5))
    zoomed = shown_rect(view).width()
    window.resize(900, 700)
    qtbot.wait(50)
    assert shown_rect(view).width() < small and zoomed < small  # the user's zoom is kept
