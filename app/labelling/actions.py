"""The labelling mode's actions, built in one place (name, text, shortcuts, tooltip, slot)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QWidget

from app.actions import ActionSpec, make_action

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("brush", "Brush", ("B",), "Paint the active class", "use_brush", tool=True),
    ActionSpec("eraser", "Eraser", ("E",), "Erase labels (own size)", "use_eraser", tool=True),
    ActionSpec("fill", "Fill", ("F",), "Fill the connected region of one class", "use_fill", tool=True),
    ActionSpec("polygon", "Polygon", ("P",), "Click vertices; double-click or Enter closes, Esc abandons",
               "use_polygon", tool=True),
    ActionSpec("undo", "Undo", ("Ctrl+Z",), "Undo the last stroke or fill", "undo"),
    ActionSpec("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "redo"),
    ActionSpec("smaller", "Smaller brush", ("[",), "Brush or eraser 2 px smaller", "smaller"),
    ActionSpec("larger", "Larger brush", ("]",), "Brush or eraser 2 px larger", "larger"),
    ActionSpec("close_polygon", "Close polygon", ("Return", "Enter"), "Fill the pending polygon", "close_polygon"),
    ActionSpec("abandon_polygon", "Abandon polygon", ("Esc",), "Drop the pending polygon", "abandon_polygon"),
    ActionSpec("save", "Save labels", ("Ctrl+S",), "Write labels.png and meta.json into the dataset folder",
               "save"),
    ActionSpec("from_prediction", "Start from prediction", ("Ctrl+P",),
               "Copy the current classification (pixels above the confidence threshold)", "start_from_prediction"),
    ActionSpec("import_nemesis", "Import NEMESIS labels…", (), "Replace labels with a SNAPgt*.mat ground truth",
               "import_nemesis_dialog"),
    *(ActionSpec(f"class_{i}", f"Class {i}", (str(i),), f"Paint class {i}", f"select_class_{i}")
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
