"""Labelling mode: canvas, tools, class picker with live counts, autosave and recovery.

A thin view over :class:`app.labelling.session.LabellingSession` (which owns the
:class:`core.label_editor.LabelEditor`). Open a capture with :meth:`LabellingWidget.open`:
the folder that holds (or will hold) ``labels.png``, the synthetic RGB and, when
there is one, the current prediction to start from.

Never lose work: every :data:`AUTOSAVE_MS` a QTimer writes the recovery file (the
PNG is encoded on a worker thread from a copy taken on the GUI thread), and
closing the widget writes it too; opening a capture whose recovery file is newer
than ``labels.png`` asks ``restore_prompt`` whether to restore it.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.labelling import canvas as cv
from app.labelling.actions import TOOLBAR, build_actions
from app.labelling.session import LabellingSession, Prediction
from core.classes import CLASS_IDS, class_table

AUTOSAVE_MS = 10_000
SIZE_STEP = 2


def ask_restore(parent: QtWidgets.QWidget, folder: Path) -> bool:
    """Default recovery prompt: a Yes/No question naming the folder."""
    answer = QtWidgets.QMessageBox.question(
        parent, "Recover labels",
        f"Unsaved labels from an earlier session were found for\n{folder}\n\nRestore them?",
        QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
        QtWidgets.QMessageBox.StandardButton.Yes,
    )
    return answer == QtWidgets.QMessageBox.StandardButton.Yes


class LabellingWidget(QtWidgets.QWidget):
    """Labelling mode. ``restore_prompt(parent, folder) -> bool`` and ``error_sink(exc)`` are injectable."""

    saved = QtCore.Signal(Path)
    recoveryOffered = QtCore.Signal(Path, bool)  # folder, restored

    def __init__(
        self,
        parent: QtWidgets.QWidget | None = None,
        *,
        restore_prompt: Callable[[QtWidgets.QWidget, Path], bool] = ask_restore,
        error_sink: Callable[[BaseException], None] | None = None,
        autosave_ms: int = AUTOSAVE_MS,
    ) -> None:
        super().__init__(parent)
        self.restore_prompt = restore_prompt
        self.error_sink = error_sink or self._show_error
        self.session: LabellingSession | None = None
        self.prediction: Prediction | None = None
        self._palette = "thesis"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="label-autosave")
        self._pending: Future | None = None

        self.canvas = cv.LabelCanvas(self)
        self.actions_by_name = build_actions(self)
        self.toolbar = QtWidgets.QToolBar("Labelling", self)
        for name in TOOLBAR:
            if name is None:
                self.toolbar.addSeparator()
            else:
                self.toolbar.addAction(self.actions_by_name[name])
        self._build_panel()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.toolbar)
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.canvas, 1)
        body.addWidget(self.panel)
        layout.addLayout(body, 1)

        self.canvas.changed.connect(self._edited)
        self.canvas.brushSizeChanged.connect(self._sync_sizes)
        self.canvas.polygonChanged.connect(lambda n: self._status(f"polygon: {n} vertices" if n else ""))
        self.autosave_timer = QtCore.QTimer(self)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave_async)
        self._set_enabled(False)

    # ---- panel
    def _build_panel(self) -> None:
        self.panel = QtWidgets.QWidget(self)
        self.panel.setMinimumWidth(270)
        form = QtWidgets.QVBoxLayout(self.panel)
        box = QtWidgets.QGroupBox("Class (keys 1-5)", self.panel)
        classes = QtWidgets.QVBoxLayout(box)
        self.class_buttons: dict[int, QtWidgets.QRadioButton] = {}
        group = QtWidgets.QButtonGroup(self)
        for class_id in CLASS_IDS:
            button = QtWidgets.QRadioButton(box)
            button.setObjectName(f"class_button_{class_id}")
            button.setIcon(self._swatch(class_id))
            button.toggled.connect(lambda on, c=class_id: on and self.select_class(c))
            group.addButton(button)
            classes.addWidget(button)
            self.class_buttons[class_id] = button
        form.addWidget(box)

        sizes = QtWidgets.QFormLayout()
        self.brush_spin = QtWidgets.QSpinBox(self.panel)
        self.eraser_spin = QtWidgets.QSpinBox(self.panel)
        for spin in (self.brush_spin, self.eraser_spin):
            spin.setRange(1, 500)
            spin.setSuffix(" px")
        self.brush_spin.setToolTip("Brush diameter ([ and ], or Alt+drag)")
        self.eraser_spin.setToolTip("Eraser diameter ([ and ] with the eraser, or Alt+drag)")
        self.brush_spin.valueChanged.connect(self._brush_spun)
        self.eraser_spin.valueChanged.connect(self._eraser_spun)
        sizes.addRow("Brush", self.brush_spin)
        sizes.addRow("Eraser", self.eraser_spin)
        self.preserve_check = QtWidgets.QCheckBox("Preserve other labels", self.panel)
        self.preserve_check.setToolTip("Paint only unlabelled pixels (or pixels of the active class)")
        self.preserve_check.toggled.connect(self._preserve_toggled)
        sizes.addRow(self.preserve_check)
        self.display_combo = QtWidgets.QComboBox(self.panel)
        self.display_combo.addItems([cv.FILLED, cv.OUTLINE])
        self.display_combo.currentTextChanged.connect(self.canvas.set_display)
        sizes.addRow("Show", self.display_combo)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self.panel)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(60)
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100))
        self.canvas.set_opacity(0.6)
        sizes.addRow("Opacity", self.opacity_slider)
        self.threshold_spin = QtWidgets.QDoubleSpinBox(self.panel)
        self.threshold_spin.setRange(0.0, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(0.8)
        self.threshold_spin.setToolTip("Start from prediction copies only pixels at least this confident")
        sizes.addRow("Confidence ≥", self.threshold_spin)
        self.author_edit = QtWidgets.QLineEdit(self.panel)
        self.author_edit.setPlaceholderText("who drew these labels")
        self.author_edit.textChanged.connect(self._author_changed)
        sizes.addRow("Author", self.author_edit)
        form.addLayout(sizes)
        self.status_label = QtWidgets.QLabel(self.panel)
        self.status_label.setWordWrap(True)
        form.addWidget(self.status_label)
        form.addStretch(1)

    def _swatch(self, class_id: int) -> QtGui.QIcon:
        pixmap = QtGui.QPixmap(14, 14)
        pixmap.fill(QtGui.QColor(*class_table().colour(class_id, self._palette)))
        return QtGui.QIcon(pixmap)

    # ---- opening and closing
    def open(
        self,
        folder: str | Path,
        rgb: np.ndarray | None,
        *,
        shape: tuple[int, int] | None = None,
        prediction: Prediction | None = None,
        author: str | None = None,
    ) -> LabellingSession:
        """Label the capture in ``folder``: ``rgb`` uint8 (H, W, 3) is shown below the labels.

        The label map has the RGB's shape (or ``shape`` when ``rgb`` is None). When a
        recovery file newer than labels.png exists, ``restore_prompt`` decides.
        """
        self.close_session()
        if rgb is not None:
            shape = rgb.shape[:2]
        if shape is None:
            raise ValueError("open() needs the RGB image or the label map shape")
        session = LabellingSession(folder, shape, author=author or self.author_edit.text() or None)
        self.session = session
        self.prediction = prediction
        self.canvas.set_content(rgb, session.editor)
        self.author_edit.setText(session.author)
        if session.recovery_available:
            restore = bool(self.restore_prompt(self, session.folder))
            if restore:
                session.restore_recovery()
            else:
                session.discard_recovery()
            self.recoveryOffered.emit(session.folder, restore)
        self._sync_from_editor()
        self._set_enabled(True)
        self.autosave_timer.start()
        return session

    def close_session(self) -> None:
        """Autosave (synchronously) and forget the current capture."""
        self.autosave_timer.stop()
        self._wait_autosave()
        if self.session is not None:
            try:
                self.session.autosave()
            except OSError as exc:
                self.error_sink(exc)
        self.session = None
        self._set_enabled(False)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.close_session()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop timers and the autosave thread (call before deleting the widget)."""
        self.close_session()
        self._executor.shutdown(wait=True)

    # ---- autosave
    def autosave_async(self) -> None:
        """Copy the labels now, encode and write the recovery file on the worker thread."""
        if self.session is None or (self._pending is not None and not self._pending.done()):
            return
        snapshot = self.session.autosave_snapshot()
        if snapshot is None:
            return
        session = self.session
        self._pending = self._executor.submit(session.write_autosave, snapshot)
        self._pending.add_done_callback(self._autosave_done)

    def _autosave_done(self, future: Future) -> None:
        exc = future.exception()
        if exc is not None:  # reported on the GUI thread
            QtCore.QMetaObject.invokeMethod(self, "_report_autosave_error", QtCore.Qt.ConnectionType.QueuedConnection)
            self._autosave_error = exc

    @QtCore.Slot()
    def _report_autosave_error(self) -> None:
        self.error_sink(getattr(self, "_autosave_error", RuntimeError("autosave failed")))

    def _wait_autosave(self) -> None:
        if self._pending is not None:
            try:
                self._pending.result()
            except OSError as exc:
                self.error_sink(exc)
            self._pending = None

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

    def select_class(self, class_id: int) -> None:
        if self.session is None:
            return
        self.session.editor.active_class = class_id
        if not self.class_buttons[class_id].isChecked():
            self.class_buttons[class_id].setChecked(True)
        self.canvas.refresh_cursor()  # recolour the cursor

    def select_class_1(self) -> None:
        self.select_class(1)

    def select_class_2(self) -> None:
        self.select_class(2)

    def select_class_3(self) -> None:
        self.select_class(3)

    def select_class_4(self) -> None:
        self.select_class(4)

    def select_class_5(self) -> None:
        self.select_class(5)

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

    def close_polygon(self) -> None:
        self.canvas.close_polygon()

    def abandon_polygon(self) -> None:
        self.canvas.cancel_polygon()

    def save(self) -> Path | None:
        if self.session is None:
            return None
        self._wait_autosave()
        try:
            path = self.session.save()
        except (OSError, ValueError) as exc:
            self.error_sink(exc)
            return None
        self._status(f"saved {path}")
        self.saved.emit(path)
        return path

    def set_prediction(self, prediction: Prediction | None) -> None:
        """The classification "Start from prediction" copies (same shape as the labels)."""
        self.prediction = prediction
        self.actions_by_name["from_prediction"].setEnabled(self.session is not None and prediction is not None)

    def start_from_prediction(self) -> None:
        if self.session is None or self.prediction is None:
            self._status("no prediction to start from: classify the capture first")
            return
        try:
            rect = self.session.copy_prediction(self.prediction, self.threshold_spin.value())
        except ValueError as exc:
            self.error_sink(exc)
            return
        self._status("prediction copied" if not rect.empty else "nothing to copy above the threshold")

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

    # ---- palette and visibility (the main window forwards its settings)
    def set_palette(self, palette: str) -> None:
        self._palette = palette
        self.canvas.set_palette(palette)
        for class_id, button in self.class_buttons.items():
            button.setIcon(self._swatch(class_id))

    # ---- syncing the panel
    def _edited(self, _rect) -> None:
        self._update_counts()

    def _update_counts(self) -> None:
        if self.session is None:
            return
        counts = self.session.editor.counts()
        table = class_table()
        for class_id, button in self.class_buttons.items():
            button.setText(f"{class_id}  {table.by_id(class_id).name}  {counts[class_id]:,} px")
        editor = self.session.editor
        self.actions_by_name["undo"].setEnabled(editor.can_undo)
        self.actions_by_name["redo"].setEnabled(editor.can_redo)

    def _sync_from_editor(self) -> None:
        editor = self.session.editor
        self.class_buttons[editor.active_class].setChecked(True)
        self._sync_sizes()
        self.preserve_check.setChecked(editor.preserve_labels)
        self._update_counts()

    def _sync_sizes(self, _d: int | None = None) -> None:
        if self.session is None:
            return
        editor = self.session.editor
        for spin, value in ((self.brush_spin, editor.brush_diameter), (self.eraser_spin, editor.eraser_diameter)):
            if spin.value() != value:
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)

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

    def _set_enabled(self, on: bool) -> None:
        for name, action in self.actions_by_name.items():
            action.setEnabled(on and (name != "from_prediction" or self.prediction is not None))
        self.panel.setEnabled(on)

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _show_error(self, exc: BaseException) -> None:
        self._status(f"error: {exc}")
        QtWidgets.QMessageBox.warning(self, "Labelling", str(exc))
