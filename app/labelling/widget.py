"""Labelling mode: canvas, tools, class picker with live counts, autosave and recovery.

A thin view over :class:`app.labelling.session.LabellingSession` (which owns the
:class:`core.labels.editor.LabelEditor`). Open a capture with :meth:`LabellingWidget.open`:
the folder that holds (or will hold) ``labels.png``, the synthetic RGB and, when
there is one, the current prediction to start from.

Never lose work: unsaved changes show as ``*`` in the window title and an enabled
Save; :meth:`LabellingWidget.maybe_save` asks Save / Discard / Cancel before they
would go away; every 10 s the recovery file is written on a worker
(:mod:`app.labelling.autosave`); opening a capture whose recovery file is newer
than ``labels.png`` asks ``restore_prompt`` whether to restore it (declined or
damaged recovery files are moved to ``recovered/``, never deleted).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling import canvas as cv
from app.labelling import prompts
from app.labelling.actions import TOOLBAR, build_actions
from app.labelling.autosave import AUTOSAVE_MS, Autosaver
from app.labelling.panel import ActiveClassBadge, LabellingPanel
from app.labelling.session import LabellingSession, Prediction
from core.errors import DatasetError

SIZE_STEP = 2
OPACITY_STEP = 10  # percent per key press


class LabellingWidget(QtWidgets.QWidget):
    """Labelling mode. ``restore_prompt(parent, folder) -> bool``, ``save_prompt(parent, folder) -> str``
    (``prompts.SAVE`` / ``DISCARD`` / ``CANCEL``), ``confirm_prompt(parent, title, text) -> bool`` and
    ``error_sink(exc)`` are injectable (tests answer them without modal dialogs)."""

    saved = QtCore.Signal(Path)
    recoveryOffered = QtCore.Signal(Path, bool)  # folder, restored
    dirtyChanged = QtCore.Signal(bool)
    authorChanged = QtCore.Signal(str)

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        *,
        restore_prompt: Callable[[QtWidgets.QWidget, Path], bool] = prompts.ask_restore,
        save_prompt: Callable[[QtWidgets.QWidget, Path], str] = prompts.ask_save,
        confirm_prompt: Callable[[QtWidgets.QWidget, str, str], bool] = prompts.confirm,
        error_sink: Callable[[BaseException], None] | None = None,
        autosave_ms: int = AUTOSAVE_MS,
    ) -> None:
        super().__init__(parent)
        self.restore_prompt = restore_prompt
        self.save_prompt = save_prompt
        self.confirm_prompt = confirm_prompt
        self.error_sink = error_sink or self._show_error
        self.session: LabellingSession | None = None
        self.prediction: Prediction | None = None
        self._palette = "thesis"
        self._dirty = False

        self.canvas = cv.LabelCanvas(self)
        self.canvas.confirm_fill = self._confirm_fill
        self.actions_by_name = build_actions(self)
        self.toolbar = QtWidgets.QToolBar("Labelling", self)
        for name in TOOLBAR:
            if name is None:
                self.toolbar.addSeparator()
            else:
                self.toolbar.addAction(self.actions_by_name[name])
        self.badge = ActiveClassBadge(self.toolbar)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(self.badge)
        self.panel = LabellingPanel(self)
        for name in ("class_buttons", "brush_spin", "eraser_spin", "preserve_check", "display_combo",
                     "opacity_slider", "threshold_spin", "author_edit", "status_label"):
            setattr(self, name, getattr(self.panel, name))  # tests and scripts reach them by these names
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.canvas, 1)
        body.addWidget(self.panel)
        layout.addLayout(body, 1)

        self.panel.classChosen.connect(self.select_class)
        self.brush_spin.valueChanged.connect(self._brush_spun)
        self.eraser_spin.valueChanged.connect(self._eraser_spun)
        self.preserve_check.toggled.connect(self._preserve_toggled)
        self.display_combo.currentTextChanged.connect(self.canvas.set_display)
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100))
        self.canvas.set_opacity(self.opacity_slider.value() / 100)
        self.author_edit.textChanged.connect(self._author_changed)
        self.canvas.changed.connect(self._edited)
        self.canvas.brushSizeChanged.connect(self._sync_sizes)
        self.canvas.polygonChanged.connect(lambda n: self._status(f"polygon: {n} vertices" if n else ""))
        self.autosaver = Autosaver(self, self._report, autosave_ms)
        self.autosave_timer = self.autosaver.timer
        self._set_enabled(False)

    # ---- opening and closing
    def open(
        self,
        folder: str | Path,
        rgb: np.ndarray | None,
        *,
        shape: tuple[int, int] | None = None,
        prediction: Prediction | None = None,
        author: str | None = None,
        valid: np.ndarray | None = None,
    ) -> LabellingSession:
        """Label the capture in ``folder``: ``rgb`` uint8 (H, W, 3) is shown below the labels.

        The label map has the RGB's shape (or ``shape`` when ``rgb`` is None);
        ``valid`` bool (H, W) bounds fills. Unsaved work of a capture open before is
        autosaved (call :meth:`maybe_save` first to ask). When a recovery file newer
        than labels.png exists, ``restore_prompt`` decides; a damaged one is reported
        and moved to ``recovered/``.
        """
        self.close_session()
        if rgb is not None:
            shape = rgb.shape[:2]
        if shape is None:
            raise ValueError("open() needs the RGB image or the label map shape")
        session = LabellingSession(folder, shape, author=author or self.author_edit.text() or None, valid=valid)
        self.session = session
        self.prediction = prediction
        self.canvas.set_content(rgb, session.editor)
        self.author_edit.setText(session.author)
        if session.removed_temp_files:
            self._status(f"removed {len(session.removed_temp_files)} file(s) left by an interrupted save")
        if session.recovery_available:
            self._offer_recovery(session)
        session.editor.history_listeners.append(self._history_changed)
        self._sync_from_editor()
        self._set_enabled(True)
        self._history_changed()
        if self.isWindow():
            self.setWindowTitle(f"Labelling — {session.folder.name}[*]")
        self.autosaver.start(session)
        return session

    def _offer_recovery(self, session: LabellingSession) -> None:
        try:
            found = session.read_recovery()
        except DatasetError as exc:
            aside = session.set_aside_recovery("damaged")
            self.error_sink(DatasetError(exc.path, f"{exc.problem}; the damaged recovery file was moved to {aside} "
                                                   "and labelling opens without it"))
            return
        restore = bool(self.restore_prompt(self, session.folder))
        if restore:
            session.restore_recovery(found)
        else:
            session.set_aside_recovery("declined")
        self.recoveryOffered.emit(session.folder, restore)

    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there are unsaved labels; True when it is fine to go on.

        Save writes labels.png (False if that fails: the work stays open); Discard
        moves the unsaved map to ``recovered/``; Cancel returns False.
        """
        if self.session is None or not self.session.dirty:
            return True
        answer = self.save_prompt(self, self.session.folder)
        if answer == prompts.SAVE:
            return self.save() is not None
        if answer == prompts.DISCARD:
            self.autosaver.wait()
            try:
                aside = self.session.discard_changes()
            except OSError as exc:
                self.error_sink(exc)
                return False
            self._history_changed()
            self._status(f"discarded; kept in {aside}" if aside else "discarded")
            return True
        return False

    def close_session(self) -> None:
        """Autosave unsaved work (synchronously) and forget the current capture."""
        self.autosaver.stop()
        if self.session is not None:
            try:
                self.session.close()
            except OSError as exc:
                self.error_sink(exc)
        self.session = None
        self._set_enabled(False)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.close_session()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers and the autosave thread (call before deleting the widget)."""
        self.close_session()
        self.autosaver.shutdown()

    # ---- autosave (the timer's work; tests call these directly)
    def autosave_async(self) -> None:
        self.autosaver.autosave_async()

    def wait_autosave(self) -> None:
        self.autosaver.wait()

    # ---- action slots
    def use_brush(self) -> None:
        self._use_tool(cv.BRUSH)

    def use_eraser(self) -> None:
        self._use_tool(cv.ERASER)

    def use_fill(self) -> None:
        self._use_tool(cv.FILL)

    def use_polygon(self) -> None:
        self._use_tool(cv.POLYGON)

    def _use_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.actions_by_name[tool].setChecked(True)
        self._show_badge()

    def select_class(self, class_id: int) -> None:
        if self.session is None:
            return
        self.session.editor.active_class = class_id
        if not self.class_buttons[class_id].isChecked():
            self.class_buttons[class_id].setChecked(True)
        if self.canvas.tool == cv.ERASER:  # choosing a class means painting it
            self.use_brush()
        self.canvas.refresh_cursor()  # recolour the cursor
        self._show_badge()

    def undo(self) -> None:
        if self.session is not None:
            self.canvas.cancel_polygon()
            self.session.editor.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.editor.redo()

    def smaller(self) -> None:
        self.canvas.set_diameter(self.canvas.diameter() - SIZE_STEP)

    def larger(self) -> None:
        self.canvas.set_diameter(self.canvas.diameter() + SIZE_STEP)

    def fit(self) -> None:
        self.canvas.fit()

    def toggle_labels(self) -> None:
        self.canvas.set_labels_visible(not self.canvas.labels_visible)

    def more_opaque(self) -> None:
        self.opacity_slider.setValue(self.opacity_slider.value() + OPACITY_STEP)

    def less_opaque(self) -> None:
        self.opacity_slider.setValue(self.opacity_slider.value() - OPACITY_STEP)

    def close_polygon(self) -> None:
        self.canvas.close_polygon()

    def abandon_polygon(self) -> None:
        self.canvas.cancel_polygon()

    def save(self) -> Path | None:
        if self.session is None:
            return None
        self.autosaver.wait()
        try:
            path = self.session.save()
        except (OSError, ValueError) as exc:
            self.error_sink(exc)
            return None
        self._history_changed()
        self._status(f"saved {path}")
        self.saved.emit(path)
        return path

    def set_prediction(self, prediction: Prediction | None) -> None:
        """The classification "Start from prediction" copies (same shape as the labels)."""
        self.prediction = prediction
        self.actions_by_name["from_prediction"].setEnabled(self.session is not None and prediction is not None)

    def start_from_prediction(self) -> None:
        """Copy the prediction above the confidence threshold; asks first when it replaces existing labels."""
        if self.session is None or self.prediction is None:
            self._status("no prediction to start from: classify the capture first")
            return
        threshold = self.threshold_spin.value()
        try:
            changed, replaced = self.session.prediction_change(self.prediction, threshold)
            if changed == 0:
                self._status("nothing to copy above the threshold")
                return
            if replaced and not self.confirm_prompt(
                self, "Start from prediction",
                f"The prediction changes {changed:,} pixels; {replaced:,} of them are labelled now and "
                "would be replaced.\n\nReplace them? (Undo brings them back.)"):
                self._status("start from prediction cancelled")
                return
            self.session.copy_prediction(self.prediction, threshold)
        except ValueError as exc:
            self.error_sink(exc)
            return
        self._status(f"prediction copied: {changed:,} pixels changed")

    def _confirm_fill(self, pixels: int) -> bool:
        return bool(self.confirm_prompt(
            self, "Large fill", f"This fill paints {pixels:,} pixels, more than half of the capture.\n\nFill?"))

    def import_nemesis_dialog(self) -> None:
        if self.session is None:
            return
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Import NEMESIS ground truth", str(self.session.folder),
                                                        "NEMESIS ground truth (SNAPgt*.mat);;MATLAB files (*.mat)")
        if path:
            self.import_nemesis(path)

    def import_nemesis(self, path: str | Path) -> bool:
        try:
            self.session.import_nemesis(path)
        except (OSError, ValueError) as exc:
            self.error_sink(exc)
            return False
        self._status(f"imported {Path(path).name}")
        return True

    # ---- palette (the main window forwards its settings)
    def set_palette(self, palette: str) -> None:
        self._palette = palette
        self.canvas.set_palette(palette)
        self.panel.set_palette(palette)
        self._show_badge()

    # ---- syncing the panel and the actions
    def _edited(self, _rect) -> None:
        if self.session is not None:
            self.panel.show_counts(self.session.editor.counts())

    def _history_changed(self) -> None:
        """After the undo/redo stacks changed (or a save): actions and the unsaved marker follow them."""
        if self.session is None:
            return
        editor = self.session.editor
        self.actions_by_name["undo"].setEnabled(editor.can_undo)
        self.actions_by_name["redo"].setEnabled(editor.can_redo)
        dirty = self.session.dirty
        self.actions_by_name["save"].setEnabled(dirty)
        self.panel.show_counts(editor.counts())
        self.window().setWindowModified(dirty)
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)

    @property
    def dirty(self) -> bool:
        return self.session is not None and self.session.dirty

    def _sync_from_editor(self) -> None:
        editor = self.session.editor
        self.class_buttons[editor.active_class].setChecked(True)
        self._sync_sizes()
        self.preserve_check.setChecked(editor.preserve_labels)
        self.panel.show_counts(editor.counts())
        self._show_badge()

    def _show_badge(self) -> None:
        if self.session is not None:
            self.badge.show_class(self.session.editor.active_class, self._palette,
                                  erasing=self.canvas.tool == cv.ERASER)

    def _sync_sizes(self, _d: int | None = None) -> None:
        if self.session is not None:
            self.panel.show_sizes(self.session.editor.brush_diameter, self.session.editor.eraser_diameter)

    def _brush_spun(self, value: int) -> None:
        if self.session is not None:
            self.session.editor.brush_diameter = value
            self.canvas.refresh_cursor()

    def _eraser_spun(self, value: int) -> None:
        if self.session is not None:
            self.session.editor.eraser_diameter = value
            self.canvas.refresh_cursor()

    def _preserve_toggled(self, on: bool) -> None:
        if self.session is not None:
            self.session.editor.preserve_labels = on

    def _author_changed(self, text: str) -> None:
        if self.session is not None and text.strip():
            self.session.author = text.strip()
            self.authorChanged.emit(text.strip())

    def _set_enabled(self, on: bool) -> None:
        for name, action in self.actions_by_name.items():
            action.setEnabled(on and (name != "from_prediction" or self.prediction is not None))
        self.panel.setEnabled(on)

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _report(self, exc: BaseException) -> None:
        self.error_sink(exc)

    def _show_error(self, exc: BaseException) -> None:
        self._status(f"error: {exc}")
        QtWidgets.QMessageBox.warning(self, "Labelling", str(exc))
