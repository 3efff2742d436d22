"""The overlay state is plain Python: no Qt, validated fields, callbacks only on change."""
from __future__ import annotations

import subprocess
import sys

import pytest

from app.overlay_state import OverlayState, Pin, pin_colour

QT_BLOCKED_IMPORT = """
import sys
class _NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "superqt"):
            raise ImportError(f"Qt is blocked: {name}")
        return None
sys.meta_path.insert(0, _NoQt())
import app.overlay_state as m
s = m.OverlayState()
s.opacity = 30
print(s.opacity, sorted(k for k in sys.modules if k.startswith(("PySide6", "pyqtgraph"))))
"""


def test_imports_with_qt_blocked():
    done = subprocess.run([sys.executable, "-c", QT_BLOCKED_IMPORT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30 []"


def test_callbacks_fire_once_per_change_with_the_new_value():
    state = OverlayState()
    seen: list[tuple[str, object]] = []
    for name in OverlayState.fields():
        state.on_change(name, lambda v, n=name: seen.append((n, v)))
    state.opacity = 35
    state.opacity = 35  # unchanged: no event, so two-way bindings cannot loop
    state.palette = "colourblind"
    state.set_class_visible(2, False)
    state.set_view_mode("probability", 3)
    assert seen == [("opacity", 35), ("palette", "colourblind"), ("hidden", frozenset({2})),
                    ("view_mode", "probability"), ("probability_class", 3)]
    state.events.contour.connect(lambda v: seen.append(("contour-events", v)))
    state.contour = True
    assert seen[-2:] == [("contour", True), ("contour-events", True)]


def test_listeners_see_a_multi_field_change_complete():
    state = OverlayState()
    seen = []
    state.on_change("view_mode", lambda _v: seen.append((state.view_mode, state.probability_class)))
    state.set_view_mode("probability", 4)
    assert seen == [("probability", 4)]
    with pytest.raises(ValueError):
        state.update(view_mode="confidence", palette="rainbow")  # nothing half-applied
    assert state.view_mode == "probability" and state.palette == "thesis"


def test_fields_are_validated_and_clamped():
    state = OverlayState()
    with pytest.raises(ValueError, match="palette"):
        state.palette = "rainbow"
    with pytest.raises(ValueError, match="view mode"):
        state.view_mode = "spectral"
    with pytest.raises(AttributeError, match="no field"):
        state.opactiy = 3  # a typo is an error, not a silent new attribute
    with pytest.raises(ValueError, match="unknown overlay field"):
        state.on_change("colour", print)
    state.opacity = 5
    assert state.step_opacity(-1) == 0 and state.step_opacity(+3) == 30
    state.opacity = 250
    assert state.opacity == 100


def test_toggle_class_and_pins():
    state = OverlayState()
    assert state.toggle_class(4) is False and state.hidden == {4}
    assert state.toggle_class(4) is True and state.hidden == frozenset()
    first, second = state.add_pin(1, 2), state.add_pin(3, 4)
    assert state.pins == (Pin(1, 2, pin_colour(0)), Pin(3, 4, pin_colour(1)))
    assert first.colour != second.colour
    state.clear_pins()
    assert state.pins == ()
