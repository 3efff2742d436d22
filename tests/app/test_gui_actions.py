"""Actions come from tables whose slots are callables; menus are assembled from them."""
from __future__ import annotations

from PySide6.QtGui import QKeySequence

from app.actions import ACTIONS, MENUS
from app.labelling import actions as labelling_actions
from app.labelling.integration import install_labelling


def test_every_main_action_is_built_and_connected(make_window, small_files):
    _raw, model = small_files
    window = make_window(model)
    assert set(window.actions) == {spec.name for spec in ACTIONS}
    for spec in ACTIONS:
        assert callable(spec.slot(window)), spec.name
        action = window.actions[spec.name]
        assert action.objectName() == f"action_{spec.name}"
        assert [s.toString() for s in action.shortcuts()] == [QKeySequence(s).toString() for s in spec.shortcuts]
    in_menus = {name for names in MENUS.values() for name in names if name}
    for title, menu in window.menus.items():
        if title in MENUS:
            assert {a.objectName() for a in menu.actions() if a.objectName()} >= {
                f"action_{n}" for n in MENUS[title] if n}
    assert in_menus <= set(window.actions)
    # A slot that is a closure over the state, not a window method: triggering it changes the state.
    window.actions["contour"].trigger()
    assert window.overlay_state.contour


def test_labels_menu_is_built_from_the_table(make_window, small_files):
    _raw, model = small_files
    window = make_window(model)
    controller = install_labelling(window)
    menu = window.menus["&Labels"]
    names = [a.objectName() for a in menu.actions()]
    assert names == [f"action_{spec.name}" for spec in labelling_actions.MENU_ACTIONS]
    assert controller.label_action.shortcut().toString() == "Ctrl+L"
    controller.label_action.trigger()  # no capture open: says so instead of opening
    assert "Open a capture first" in window.sink.last.text


def test_class_keys_call_select_class_without_trampolines():
    from app.labelling.widget import LabellingWidget

    assert not [name for name in dir(LabellingWidget) if name.startswith("select_class_")]

    class Probe:
        def __init__(self):
            self.selected = []

        def select_class(self, class_id):
            self.selected.append(class_id)

    probe = Probe()
    for spec in labelling_actions.ACTIONS:
        if spec.name.startswith("class_"):
            spec.slot(probe)()
    assert probe.selected == [1, 2, 3, 4, 5]
