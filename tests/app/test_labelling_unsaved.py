"""Unsaved labels are visible and never lost: labelling window, main window, Ctrl+Q, another capture, logout.

Real MainWindow, real labelling window and widgets, real keys and mouse (pytest-qt, offscreen);
the Save / Discard / Cancel question is answered by an injected prompt, except in the test
of the real dialog's default button.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.labelling import prompts
from app.labelling.integration import install_labelling, labels_folder
from core.labels import store
from core.labels.maps import read_label_png
from tests.support.gui import open_and_wait

LEFT = QtCore.Qt.MouseButton.LeftButton
NOMOD = QtCore.Qt.KeyboardModifier.NoModifier
CTRL = QtCore.Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def labelling(qtbot, make_window, small_files, tmp_path):
    """(main window, controller, labelling widget, answers) with a capture open in the labelling tool."""
    shared_raw, model = small_files
    for tif in shared_raw.parent.glob("*.tif"):  # a copy per test: labels are written beside the capture
        shutil.copy(tif, tmp_path / tif.name)
    raw = tmp_path / shared_raw.name
    window = make_window(model)
    controller = install_labelling(window)
    opened = open_and_wait(qtbot, window, raw)
    widget = controller.open_labelling()
    answers = []
    # answers the tests queue; DISCARD when none is queued (the windows close at teardown)
    widget.save_prompt = lambda parent, folder: answers.pop(0) if answers else prompts.DISCARD
    widget.error_sink = pytest.fail
    folder = labels_folder(raw, opened.capture.capture_id)
    assert widget.session.folder == folder
    yield window, controller, widget, answers
    if controller.widget is not None:
        controller.widget.shutdown()


def paint(qtbot, widget, pixels):
    vp = widget.canvas.viewport()
    at = [widget.canvas.image_to_widget(r + 0.5, c + 0.5) for r, c in pixels]
    qtbot.mousePress(vp, LEFT, NOMOD, at[0])
    for p in at[1:]:
        qtbot.mouseMove(vp, p)
    qtbot.mouseRelease(vp, LEFT, NOMOD, at[-1])


def activate(qtbot, w):
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)


def test_ctrl_q_in_the_labelling_window_asks_and_save_leaves_exactly_the_painted_pixels(qtbot, labelling):
    window, controller, widget, answers = labelling
    lw = controller.labelling_window
    activate(qtbot, lw)
    widget.brush_spin.setValue(5)
    qtbot.keyClick(widget.canvas, QtCore.Qt.Key.Key_2)
    paint(qtbot, widget, [(10, 10), (12, 30), (20, 45)])
    qtbot.keyClick(widget.canvas, QtCore.Qt.Key.Key_4)
    paint(qtbot, widget, [(30, 5), (30, 25)])
    painted = widget.session.editor.labels.copy()
    assert painted.any() and lw.isWindowModified() and "[*]" in lw.windowTitle()
    assert widget.actions_by_name["save"].isEnabled()
    answers.append(prompts.SAVE)
    qtbot.keyClick(widget.canvas, QtCore.Qt.Key.Key_Q, CTRL)
    assert answers == []  # asked once
    assert not window.isVisible()  # the app quit
    folder = labels_folder(window.opened.capture.raw_path, window.opened.capture.capture_id)
    assert np.array_equal(read_label_png(folder / "labels.png"), painted)
    assert not store.recovery_path(folder).exists()


def test_main_window_close_cancel_keeps_both_windows_and_the_strokes(qtbot, labelling):
    window, controller, widget, answers = labelling
    paint(qtbot, widget, [(20, 20)])
    painted = widget.session.editor.labels.copy()
    answers.append(prompts.CANCEL)
    activate(qtbot, window)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Q, CTRL)  # Ctrl+Q in the main window
    assert answers == [] and window.isVisible() and controller.labelling_window.isVisible()
    assert widget.dirty and np.array_equal(widget.session.editor.labels, painted)
    answers.append(prompts.DISCARD)
    window.close()
    assert not window.isVisible() and answers == []
    kept = list((widget.session.folder / store.RECOVERED_DIR).iterdir())
    assert len(kept) == 1 and np.array_equal(read_label_png(kept[0]), painted)


def test_closing_the_labelling_window_asks_cancel_save_and_discard(qtbot, labelling):
    window, controller, widget, answers = labelling
    lw = controller.labelling_window
    folder = widget.session.folder
    paint(qtbot, widget, [(5, 5)])
    answers.append(prompts.CANCEL)
    lw.close()
    assert lw.isVisible() and widget.dirty
    answers.append(prompts.DISCARD)
    lw.close()
    assert not lw.isVisible() and widget.session is None
    assert not (folder / "labels.png").exists()
    kept = list((folder / store.RECOVERED_DIR).iterdir())
    assert len(kept) == 1 and "discarded" in kept[0].name  # discarded work is kept aside, not deleted
    # reopening: nothing offered (the discarded labels are aside), a clean map, fitted
    widget = controller.open_labelling()
    assert not widget.session.editor.labels.any() and not widget.dirty
    paint(qtbot, widget, [(6, 6)])
    answers.append(prompts.SAVE)
    lw.close()
    assert read_label_png(folder / "labels.png").any() and not lw.isVisible()


def test_opening_another_capture_asks_first(qtbot, labelling, second_small_raw):
    window, controller, widget, answers = labelling
    folder = widget.session.folder
    first_id = window.opened.capture.capture_id
    paint(qtbot, widget, [(12, 12)])
    painted = widget.session.editor.labels.copy()
    answers.append(prompts.CANCEL)
    window.open_capture(second_small_raw)
    assert answers == [] and not window.is_busy() and window.opened.capture.capture_id == first_id
    assert widget.dirty and controller.labelling_window.isVisible()
    answers.append(prompts.SAVE)
    opened = open_and_wait(qtbot, window, second_small_raw)
    assert answers == [] and opened.capture.capture_id != first_id
    assert np.array_equal(read_label_png(folder / "labels.png"), painted)
    assert widget.session is None and not controller.labelling_window.isVisible()
    assert controller.open_labelling().session.folder != folder  # Ctrl+L labels the new capture


def test_label_again_on_the_same_capture_keeps_the_undo_history(qtbot, labelling):
    window, controller, widget, answers = labelling
    paint(qtbot, widget, [(5, 5)])
    answers.append(prompts.CANCEL)
    assert controller.open_labelling() is widget
    assert widget.session.editor.can_undo and widget.dirty and answers == [prompts.CANCEL]  # not asked


def test_logout_asks_when_allowed_and_autosaves_when_not(qtbot, labelling):
    window, controller, widget, answers = labelling
    folder = widget.session.folder
    paint(qtbot, widget, [(8, 8)])

    class SessionManager:  # QSessionManager cannot be made outside a desktop session; same three calls
        def __init__(self, interaction):
            self.interaction, self.calls = interaction, []

        def allowsInteraction(self):
            self.calls.append("allowsInteraction")
            return self.interaction

        def release(self):
            self.calls.append("release")

        def cancel(self):
            self.calls.append("cancel")

    answers.append(prompts.CANCEL)
    manager = SessionManager(True)
    controller.commit_data(manager)
    assert manager.calls == ["allowsInteraction", "release", "cancel"] and widget.dirty
    manager = SessionManager(False)
    controller.commit_data(manager)
    assert manager.calls == ["allowsInteraction"] and answers == []
    assert store.recovery_pending(folder)  # written synchronously: offered on the next start
    app = QtWidgets.QApplication.instance()
    assert app.isSignalConnected(QtCore.QMetaMethod.fromSignal(app.commitDataRequest))
    assert app.isSignalConnected(QtCore.QMetaMethod.fromSignal(app.aboutToQuit))


def test_about_to_quit_writes_unsaved_labels_to_the_recovery_file(qtbot, labelling):
    window, controller, widget, answers = labelling
    folder = widget.session.folder
    paint(qtbot, widget, [(8, 8), (8, 20)])
    painted = widget.session.editor.labels.copy()
    controller.about_to_quit()
    back, _info = store.read_recovery(folder)
    assert np.array_equal(back, painted) and answers == []


def test_the_real_question_has_save_as_default_button(qtbot, tmp_path):
    seen = {}

    def inspect():
        box = QtWidgets.QApplication.activeModalWidget()
        seen["default"] = box.defaultButton() is box.button(QtWidgets.QMessageBox.StandardButton.Save)
        seen["buttons"] = sorted(b.text().replace("&", "") for b in box.buttons())
        qtbot.keyClick(box, QtCore.Qt.Key.Key_Return)  # Enter takes the default

    QtCore.QTimer.singleShot(50, inspect)
    parent = QtWidgets.QWidget()
    qtbot.addWidget(parent)
    assert prompts.ask_save(parent, tmp_path) == prompts.SAVE
    assert seen == {"default": True, "buttons": ["Cancel", "Discard", "Save"]}
    QtCore.QTimer.singleShot(50, lambda: qtbot.keyClick(QtWidgets.QApplication.activeModalWidget(),
                                                        QtCore.Qt.Key.Key_Escape))
    assert prompts.ask_save(parent, tmp_path) == prompts.CANCEL


def test_title_marker_follows_undo_to_the_saved_state(qtbot, labelling):
    window, controller, widget, answers = labelling
    lw = controller.labelling_window
    assert not lw.isWindowModified() and not widget.actions_by_name["save"].isEnabled()
    paint(qtbot, widget, [(5, 5)])
    assert lw.isWindowModified()
    widget.save()
    assert not lw.isWindowModified()
    widget.undo()
    assert lw.isWindowModified()
    widget.redo()
    assert not lw.isWindowModified()
