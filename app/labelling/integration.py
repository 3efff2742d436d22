"""Plug the labelling mode and the retraining dialog into the main window.

``install_labelling(window)`` uses the main window's extension points
(``add_menu``, ``capture_opened`` / ``classified``, ``opened`` / ``result``,
``before_open``): a "&Labels" menu with *Label this capture…* (Ctrl+L) and
*Retrain the model…*. The labelling widget opens in its own window so the
theatre view stays as it is.

Unsaved labels are never lost: :meth:`LabellingController.maybe_save` (Save /
Discard / Cancel) runs before the labelling window or the main window closes
(also Ctrl+Q, from either window), before another capture opens, and when the
desktop session asks the app to save its data at logout (``commitDataRequest``);
``aboutToQuit`` autosaves whatever is still unsaved.
"""
from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

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


class LabellingWindow(QtWidgets.QMainWindow):
    """The labelling tool's own window, under the research-use notice; closing it asks to save first."""

    def __init__(self, parent: QtWidgets.QWidget, widget: LabellingWidget) -> None:
        from app.status_panel import ResearchBanner
        from app.window_layout import fit_to_screen

        super().__init__(parent)
        self.setObjectName("labelling_window")
        self.setWindowTitle("Labelling[*]")  # the placeholder before the first modified flag (Qt warns otherwise)
        self.widget = widget
        central = QtWidgets.QWidget(self)
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = ResearchBanner(central)  # labels drawn here train models: the same notice as the map
        layout.addWidget(self.banner)
        layout.addWidget(widget, 1)
        self.setCentralWidget(central)
        fit_to_screen(self, 1300, 850)  # its close button stays on a 1280 x 800 screen

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        if not self.widget.maybe_save():
            event.ignore()
            return
        self.widget.close_session()
        super().closeEvent(event)


class LabellingController(QtCore.QObject):
    """Owns the labelling window and opens the retraining dialog for one main window."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.labelling_window: LabellingWindow | None = None
        self.widget: LabellingWidget | None = None
        self.dialog = None
        menu = window.add_menu("&Labels")
        actions = build_menu_actions(window, self)
        self.label_action, self.retrain_action = actions["label_capture"], actions["retrain"]
        menu.addAction(self.label_action)
        menu.addAction(self.retrain_action)
        window.classified.connect(self._classified)
        # closing the main window (its close button, Ctrl+Q) asks first: an event filter sees
        # the close before MainWindow.closeEvent and can refuse it
        window.installEventFilter(self)
        hooks = getattr(window, "before_open", None)
        if hooks is not None:
            hooks.append(self.before_open)  # opening another capture asks first
        app = QtGui.QGuiApplication.instance()
        app.commitDataRequest.connect(self.commit_data)
        app.aboutToQuit.connect(self.about_to_quit)
        QtCore.QTimer.singleShot(0, self.mention_recoverable)

    def mention_recoverable(self) -> list[str]:
        """At launch: name the recent captures whose unsaved labels wait in a recovery file (ids returned)."""
        from core.labels.store import recovery_pending

        waiting = []
        for raw in self.window.settings.get("recent_files")[:10]:
            raw = Path(raw)
            capture_id = raw.parent.name if raw.name == "raw.tif" else raw.stem
            try:
                if recovery_pending(labels_folder(raw, capture_id)):
                    waiting.append(capture_id)
            except (OSError, ValueError):
                continue
        if waiting:
            self.window.sink.note(f"Unsaved labels can be recovered for {', '.join(waiting)}: open the capture "
                                  "and Labels ▸ Label this capture (Ctrl+L)", level="warning")
        return waiting

    # ---- never lose unsaved labels
    def maybe_save(self) -> bool:
        """Save / Discard / Cancel when the labelling tool holds unsaved labels; True when it is fine to go on."""
        if self.widget is None or not self.widget.dirty:
            return True
        self.labelling_window.show()
        self.labelling_window.raise_()  # the question is about the labels shown there
        return self.widget.maybe_save()

    def before_open(self) -> bool:
        """Another capture is about to open in the main window: ask, then close the labelling session."""
        if not self.maybe_save():
            return False
        if self.widget is not None and self.widget.session is not None:
            self.widget.close_session()  # labelling follows the main window's capture (Ctrl+L labels the new one)
            self.labelling_window.hide()
        return True

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        if obj is not self.window or event.type() != QtCore.QEvent.Type.Close:
            return False
        try:
            keep_going = self.maybe_save()
        except Exception as exc:  # noqa: BLE001 - never let an error here close the app over unsaved work
            self.window.sink.report(exc)
            keep_going = False
        if not keep_going:
            event.ignore()
            return True  # the main window stays open
        return False

    def commit_data(self, manager: QtGui.QSessionManager) -> None:
        """Logout / shutdown: ask when the session manager allows it, else autosave (restored next time)."""
        if self.widget is None or not self.widget.dirty:
            return
        if manager.allowsInteraction():
            keep_going = self.maybe_save()
            manager.release()
            if not keep_going:
                manager.cancel()
        else:
            self.about_to_quit()

    def about_to_quit(self) -> None:
        """The app is going away: unsaved labels are written to the recovery file (offered on the next open)."""
        if self.widget is not None:
            self.widget.close_session()

    # ---- opening
    def open_labelling(self) -> LabellingWidget | None:
        opened = getattr(self.window, "opened", None)
        if opened is None:
            self.window.sink.note("Open a capture first, then label it.")
            return None
        capture = opened.capture
        folder = labels_folder(capture.raw_path, capture.capture_id)
        if self.widget is None:
            self.widget = LabellingWidget(None, error_sink=self.window.sink.report)
            self.labelling_window = LabellingWindow(self.window, self.widget)
            self.labelling_window.addAction(self.window.actions["quit"])  # Ctrl+Q here quits the app too
            self.widget.authorChanged.connect(lambda name: self.window.settings.set("labeller_name", name))
        session = self.widget.session
        if session is not None and session.folder == folder:
            self.widget.fit()  # the same capture: keep its undo history, just show it
        else:
            if not self.maybe_save():
                return None
            folder.mkdir(parents=True, exist_ok=True)
            try:
                self.widget.open(folder, opened.rgb, prediction=self._prediction(),
                                 author=self.window.settings.get("labeller_name") or None,
                                 valid=getattr(opened.cube, "valid", None))
            except (OSError, ValueError) as exc:
                self.window.sink.report(exc)
                return None
            files = (capture.raw_path, capture.dark_path, capture.white_path)
            if None not in files and Path(capture.raw_path).name != "raw.tif":
                # a camera capture: its frames go into the folder on Save, so it can be trained on
                self.widget.session.capture_files = tuple(Path(f) for f in files)
        self.labelling_window.setWindowTitle(f"Labelling — {capture.capture_id}[*]")
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
            self.dialog = RetrainingDialog(self.window, settings=self.window.settings)
            # the status bar, classify and live mode use the new model at once (the store watch is the backup)
            self.dialog.modelInstalled.connect(lambda _path: self.window.model_watch.check())
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog


def install_labelling(window) -> LabellingController:
    """Add the Labels menu to ``window`` (an ``app.main_window.MainWindow``)."""
    controller = LabellingController(window)
    window.labelling = controller
    return controller
