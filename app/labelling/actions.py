"""The labelling mode's actions, built in one place (name, text, shortcuts, tooltip, slot).

Slots are functions of the labelling widget (see :class:`app.actions.ActionSpec`); the five
class keys call ``select_class(i)`` directly.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QWidget

from app.actions import ActionSpec, make_action

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("brush", "Brush", ("B",), "Paint the active class", lambda w: w.use_brush, tool=True),
    ActionSpec("eraser", "Eraser", ("E",), "Erase labels (own size)", lambda w: w.use_eraser, tool=True),
    ActionSpec("fill", "Fill", ("F",), "Fill the connected region of one class", lambda w: w.use_fill, tool=True),
    ActionSpec("polygon", "Polygon", ("P",), "Click vertices; double-click or Enter closes, Esc abandons",
               lambda w: w.use_polygon, tool=True),
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "Undo the last stroke or fill", lambda w: w.undo),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", lambda w: w.redo),
    ActionSpec("smaller", "Smaller brush", ("[",), "Brush or eraser 2 px smaller", lambda w: w.smaller),
    ActionSpec("larger", "Larger brush", ("]",), "Brush or eraser 2 px larger", lambda w: w.larger),
    ActionSpec("close_polygon", "Close polygon", ("Return", "Enter"), "Fill the pending polygon",
               lambda w: w.close_polygon),
    ActionSpec("abandon_polygon", "Abandon polygon", ("Esc",), "Drop the pending polygon",
               lambda w: w.abandon_polygon),
    ActionSpec("save", "Save labels", ("Ctrl+S",), "Write labels.png and meta.json into the dataset folder",
               lambda w: w.save),
    ActionSpec("from_prediction", "Start from prediction", ("Ctrl+P",),
               "Copy the current classification (pixels above the confidence threshold)",
               lambda w: w.start_from_prediction),
    ActionSpec("import_nemesis", "Import NEMESIS labels…", (), "Replace labels with a SNAPgt*.mat ground truth",
               lambda w: w.import_nemesis_dialog),
    *(ActionSpec(f"class_{i}", f"Class {i}", (str(i),), f"Paint class {i}",
                 lambda w, i=i: lambda: w.select_class(i))
      for i in range(1, 6)),
)

TOOLBAR: tuple[str | None, ...] = ("brush", "eraser", "fill", "polygon", None, "undo", "redo", None,
                                   "from_prediction", "import_nemesis", "save")


def build_actions(widget: QWidget) -> dict[str, QAction]:
    """QActions for :data:`ACTIONS`, added to ``widget`` with shortcuts active in it and its children."""
    actions: dict[str, QAction] = {}
    tools = QActionGroup(widget)
    tools.setExclusive(True)
    for spec in ACTIONS:
        action = make_action(spec, widget, object_name=f"label_action_{spec.name}")
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        if spec.tool:
            tools.addAction(action)
        widget.addAction(action)
        actions[spec.name] = action
    actions["brush"].setChecked(True)
    return actions


# The main window's "&Labels" menu; slots are functions of the app.labelling.integration controller.
MENU_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("label_capture", "&Label this capture…", ("Ctrl+L",), "Draw ground truth on the open capture",
               lambda c: c.open_labelling),
    ActionSpec("retrain", "&Retrain the model…", (), "Train a new model on labelled captures",
               lambda c: c.open_retraining),
)


def build_menu_actions(window: QWidget, controller) -> dict[str, QAction]:
    """QActions for :data:`MENU_ACTIONS` (object names ``action_<name>``), parented to ``window``."""
    return {spec.name: make_action(spec, window, object_name=f"action_{spec.name}", target=controller)
            for spec in MENU_ACTIONS}
