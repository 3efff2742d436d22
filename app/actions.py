"""Every action of the main window, built in one place (orange-canvas-core style).

Each :class:`ActionSpec` names the QAction (object name ``action_<name>``), its
text, shortcuts, tooltip and its slot: a function of the window that returns
the callable to connect (``lambda w: w.classify``), so a slot can be a method,
a bound controller method or a small closure without a trampoline method on the
window. Menus and toolbars are assembled from the names in :data:`MENUS` and
:data:`TOOLBAR`.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

from core.classes import class_table


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...]
    tooltip: str
    slot: Callable[[QWidget], Callable]  # window -> the callable to connect; checkable actions get the new state
    checkable: bool = False
    icon: str | None = None  # QStyle.StandardPixmap member name
    tool: bool = False  # one of a mutually exclusive group of tools: checkable, slot called on trigger


def make_action(spec: ActionSpec, parent: QWidget, *, object_name: str, target: object = None) -> QAction:
    """One QAction from ``spec``, parented to ``parent``, connected to ``spec.slot(target or parent)``."""
    action = QAction(spec.text, parent)
    action.setObjectName(object_name)
    action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
    shortcut_hint = f" ({', '.join(spec.shortcuts)})" if spec.shortcuts and "(" not in spec.tooltip else ""
    action.setToolTip(spec.tooltip + shortcut_hint)
    action.setStatusTip(spec.tooltip)
    if spec.icon:
        action.setIcon(parent.style().standardIcon(getattr(QStyle.StandardPixmap, spec.icon)))
    slot = spec.slot(parent if target is None else target)
    if spec.checkable and not spec.tool:
        action.setCheckable(True)
        action.toggled.connect(slot)
    else:
        action.setCheckable(spec.tool)
        action.triggered.connect(lambda _checked=False, s=slot: s())
    return action


def _dialog(module: str, function: str) -> Callable[[QWidget], Callable]:
    """A slot calling ``module.function(window)``, imported on first use (dialogs stay off the start-up path)."""
    return lambda w: lambda: getattr(importlib.import_module(module), function)(w)


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open capture…", ("Ctrl+O",), "Open a raw capture (references found by name)",
               _dialog("app.open_dialogs", "open_capture_dialog"), icon="SP_DialogOpenButton"),
    ActionSpec("open_with_references", "Open with &references…", ("Ctrl+Shift+O",),
               "Open a raw capture and choose its dark and white references", _dialog("app.open_dialogs", "open_with_references_dialog")),
    ActionSpec("classify", "&Classify", ("Ctrl+R", "F5"), "Classify the open capture (Ctrl+R / F5)",
               lambda w: w.classify, icon="SP_MediaPlay"),
    ActionSpec("cancel", "Cancel", ("Esc",), "Cancel the running job", lambda w: w.cancel_job, icon="SP_BrowserStop"),
    ActionSpec("fit", "Zoom to &fit", ("F",), "Show the whole image as large as the view allows",
               lambda w: w.image_view.zoom_to_fit),
    ActionSpec("actual_size", "Actual pixels (&1:1)", ("Ctrl+1",), "One image pixel per screen pixel",
               lambda w: w.image_view.zoom_actual),
    ActionSpec("overlay", "&Overlay", ("O",), "Show or hide the classification overlay",
               lambda w: lambda on: setattr(w.overlay_state, "visible", on), checkable=True),
    ActionSpec("opacity_down", "Overlay less opaque", (",",), "Overlay opacity down by 10 %",
               lambda w: lambda: w.overlay_state.step_opacity(-1)),
    ActionSpec("opacity_up", "Overlay more opaque", (".",), "Overlay opacity up by 10 %",
               lambda w: lambda: w.overlay_state.step_opacity(+1)),
    ActionSpec("contour", "C&ontours", ("C", "Ctrl+T"), "Draw class boundaries instead of filled regions",
               lambda w: lambda on: setattr(w.overlay_state, "contour", on), checkable=True),
    ActionSpec("outline", "Tumour o&utline", ("T",), "Only the tumour border: 3 px, bright green",
               lambda w: lambda on: setattr(w.overlay_state, "outline", on), checkable=True),
    ActionSpec("cycle_view", "Next &view mode", ("V",), "Class map, confidence, then each class's probability",
               lambda w: lambda: w.view_controls.cycle_mode()),
    *(ActionSpec(f"toggle_class_{t.id}", f"Show/hide {t.name}", (f"Alt+{t.id}",), f"Show or hide {t.name.lower()}",
                 lambda w, c=t.id: lambda: w.overlay_state.toggle_class(c))
      for t in class_table().classes if 1 <= t.id <= 9),
    ActionSpec("roi", "Rectangular &ROI", ("Ctrl+I",), "Show a rectangle whose mean spectrum is plotted",
               lambda w: w.set_roi_visible, checkable=True),
    ActionSpec("clear_pins", "Clear &pinned spectra", ("Ctrl+Backspace",), "Remove pinned spectra",
               lambda w: w.overlay_state.clear_pins),
    ActionSpec("export_overlay", "Export &overlay PNG…", ("Ctrl+E",), "Overlay with legend and model identity",
               lambda w: w.exports.overlay_dialog, icon="SP_DialogSaveButton"),
    ActionSpec("export_labels", "Export &label PNG…", (), "Class map as a palette PNG", lambda w: w.exports.labels_dialog),
    ActionSpec("export_npz", "Export labels and probabilities (&NPZ)…", (), "labels uint8 (H, W), probabilities "
               "float32 (H, W, C)", lambda w: w.exports.npz_dialog),
    ActionSpec("export_dicom", "Export to &DICOM / PACS…", ("Ctrl+Shift+E",),
               "Overlay as Secondary Capture and map as Segmentation, for the patient's record",
               _dialog("app.dicom_dialog", "show_dicom_export")),
    ActionSpec("pacs_outbox", "PACS o&utbox…", (), "Objects waiting for the PACS; send them now",
               _dialog("app.pacs_controller", "show_outbox")),
    ActionSpec("audit_log", "&Audit log…", (), "Who did what, when, with which model; verify and export",
               _dialog("app.audit_dialog", "show_audit_log")),
        ActionSpec("settings", "&Preferences…", ("Ctrl+,",), "Settings: scoring endpoint, model, palette, theatre mode,"
               " live mode", lambda w: w.open_settings),
    ActionSpec("theatre", "&Theatre mode", ("F11",), "Full screen: only the map, a large legend and the model",
               lambda w: w.set_theatre_mode, checkable=True, icon="SP_DesktopIcon"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("F1",), "Every key of this window", _dialog("app.shortcuts_dialog", "show_shortcuts")),
    ActionSpec("about", "&About NeuroHSI", (), "Version, model, licences, research use; copy diagnostics",
               _dialog("app.about_dialog", "show_about")),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",), "Quit NeuroHSI", lambda w: w.close),
)

MENUS: dict[str, tuple[str | None, ...]] = {
    "&File": ("open", "open_with_references", None, "export_overlay", "export_labels", "export_npz", "export_dicom",
              "pacs_outbox", None, "quit"),
    "&Edit": ("settings",),  # where users look for settings (Edit ▸ Preferences); also under Tools
    "&Classify": ("classify", "cancel"),
    "&View": ("fit", "actual_size", None, "overlay", "contour", "outline", "cycle_view", "opacity_down", "opacity_up",
              None, *(f"toggle_class_{t.id}" for t in class_table().classes if 1 <= t.id <= 9), None, "roi",
              "clear_pins", None, "theatre"),
    "&Tools": ("settings",),
    "&Help": ("shortcuts", "audit_log", "about"),
}
TOOLBAR: tuple[str | None, ...] = ("open", "classify", "cancel", None, "contour", "roi", None, "export_overlay",
                                   "theatre")


def build_actions(window: QWidget) -> dict[str, QAction]:
    """QActions for :data:`ACTIONS`, parented to and connected to ``window``'s slots."""
    return {spec.name: make_action(spec, window, object_name=f"action_{spec.name}") for spec in ACTIONS}


def populate_menus(window, actions: dict[str, QAction]) -> dict[str, object]:
    """Menus from :data:`MENUS` on ``window.menuBar()``; returns them by title."""
    menus = {}
    for title, names in MENUS.items():
        menu = window.menuBar().addMenu(title)
        menu.setObjectName("menu_" + title.replace("&", "").lower())
        for name in names:
            if name is None:
                menu.addSeparator()
            else:
                menu.addAction(actions[name])
        menus[title] = menu
    return menus


def populate_toolbar(toolbar, actions: dict[str, QAction]) -> None:
    for name in TOOLBAR:
        if name is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(actions[name])
