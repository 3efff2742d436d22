"""The labelling mode's actions, built in one place (name, text, shortcuts, tooltip, slot)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class LabellingAction:
    name: str
    text: str
    shortcuts: tuple[str, ...]
    tooltip: str
    slot: str  # LabellingWidget method; called with no argument
    tool: bool = False  # a checkable, mutually exclusive tool


ACTIONS: tuple[LabellingAction, ...] = (
    LabellingAction("brush", "Brush", ("B",), "Paint the active class", "use_brush", tool=True),
    LabellingAction("eraser", "Eraser", ("E",), "Erase labels (own size)", "use_eraser", tool=True),
    LabellingAction("fill", "Fill", ("F",), "Fill the connected region of one class", "use_fill", tool=True),
    LabellingAction("polygon", "Polygon", ("P",), "Click vertices; double-click or Enter closes, Esc abandons",
                    "use_polygon", tool=True),
    LabellingAction("undo", "Undo", ("Ctrl+Z",), "Undo the last stroke or fill", "undo"),
    LabellingAction("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "redo"),
    LabellingAction("smaller", "Smaller brush", ("[",), "Brush or eraser 2 px smaller", "smaller"),
    LabellingAction("larger", "Larger brush", ("]",), "Brush or eraser 2 px larger", "larger"),
    LabellingAction("close_polygon", "Close polygon", ("Return", "Enter"), "Fill the pending polygon",
                    "close_polygon"),
    LabellingAction("abandon_polygon", "Abandon polygon", ("Esc",), "Drop the pending polygon", "abandon_polygon"),
    LabellingAction("save", "Save labels", ("Ctrl+S",), "Write labels.png and meta.json into the dataset folder",
                    "save"),
    LabellingAction("from_prediction", "Start from prediction", ("Ctrl+P",),
                    "Copy the current classification (pixels above the confidence threshold)", "start_from_prediction"),
    LabellingAction("import_nemesis", "Import NEMESIS labels…", (), "Replace labels with a SNAPgt*.mat ground truth",
                    "import_nemesis_dialog"),
    *(LabellingAction(f"class_{i}", f"Class {i}", (str(i),), f"Paint class {i}", f"select_class_{i}")
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
        action = QAction(spec.text, widget)
        action.setObjectName(f"label_action_{spec.name}")
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        hint = f" ({' / '.join(spec.shortcuts)})" if spec.shortcuts else ""
        action.setToolTip(spec.tooltip + hint)
        slot = getattr(widget, spec.slot)
        if spec.tool:
            action.setCheckable(True)
            tools.addAction(action)
        action.triggered.connect(lambda _checked=False, s=slot: s())
        widget.addAction(action)
        actions[spec.name] = action
    actions["brush"].setChecked(True)
    return actions
