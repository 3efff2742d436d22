"""Plug the labelling mode and the retraining dialog into the main window.

``install_labelling(window)`` uses the main window's extension points
(``add_menu``, ``capture_opened`` / ``classified``, ``opened`` / ``result``): a
"&Labels" menu with *Label this capture…* (Ctrl+L) and *Retrain the model…*.
The labelling widget opens in its own window so the theatre view stays as it is.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.labelling.actions import build_menu_actions
from app.labelling.session import Prediction
from app.labelling.widget import LabellingWidget


def labels_folder(raw_path: Path | None, capture_id: str) -> Path:
    """Where a capture's labels live: its dataset folder (``.../<id>/raw.tif``), else ``<folder>/<id>/``."""
    if raw_path is None:
        raise ValueError(f"capture {capture_id} has no file on disk to keep labels beside")
    raw_path = Path(raw_path)
    if raw_path.name == "raw.tif":
        return raw_path.parent
    return raw_path.parent / capture_id


def model_identity(info) -> dict[str, str]:
    """The model identity recorded as the pre-labelling model: ``{"name", "version", "sha256"}``."""
    return {"name": str(info.name), "version": str(info.version), "sha256": str(info.sha256)}


class LabellingController(QtCore.QObject):
    """Owns the labelling window and opens the retraining dialog for one main window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.labelling_window: QtWidgets.QMainWindow | None = None
        self.widget: LabellingWidget | None = None
        self.dialog = None
        menu = window.add_menu("&Labels")
        actions = build_menu_actions(window, self)
        self.label_action, self.retrain_action = actions["label_capture"], actions["retrain"]
        menu.addAction(self.label_action)
        menu.addAction(self.retrain_action)
        window.classified.connect(self._classified)

    def open_labelling(self) -> LabellingWidget | None:
        opened = getattr(self.window, "opened", None)
        if opened is None:
            self.window.sink.note("Open a capture first, then label it.")
            return None
        capture = opened.capture
        folder = labels_folder(capture.raw_path, capture.capture_id)
        folder.mkdir(parents=True, exist_ok=True)
        if self.widget is None:
            self.labelling_window = QtWidgets.QMainWindow(self.window)
            self.labelling_window.setObjectName("labelling_window")
            self.widget = LabellingWidget(self.labelling_window, error_sink=self.window.sink.report)
            self.labelling_window.setCentralWidget(self.widget)
            self.labelling_window.resize(1300, 850)
        self.labelling_window.setWindowTitle(f"Labelling — {capture.capture_id}")
        try:
            self.widget.open(folder, opened.rgb, prediction=self._prediction())
        except (OSError, ValueError) as exc:
            self.window.sink.report(exc)
            return None
        self.widget.set_palette(self.window.settings.get("palette"))
        self.labelling_window.show()
        self.labelling_window.raise_()
        return self.widget

    def _prediction(self) -> Prediction | None:
        result = getattr(self.window, "result", None)
        if result is None:
            return None
        return Prediction(result.labels, result.probabilities, model_identity(result.model))

    def _classified(self, _result) -> None:
        if self.widget is not None and self.widget.session is not None:
            prediction = self._prediction()
            if prediction is not None and prediction.labels.shape == self.widget.session.editor.shape:
                self.widget.set_prediction(prediction)

    def open_retraining(self):
        from app.retraining.dialog import RetrainingDialog

        if self.dialog is None:
            self.dialog = RetrainingDialog(self.window, settings=self.window.settings,
                                           current_model=self.window.model_path())
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog


def install_labelling(window) -> LabellingController:
    """Add the Labels menu to ``window`` (an ``app.main_window.MainWindow``)."""
    controller = LabellingController(window)
    window.labelling = controller
    return controller
