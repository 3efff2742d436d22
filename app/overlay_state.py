"""What the overlay shows, as plain state with change callbacks (no Qt).

In the style of napari's layer models: one :class:`OverlayState` holds the
display options of the classification overlay, and every widget that shows or
edits one of them binds to it instead of reading another widget's attributes::

    state = OverlayState()
    state.events.opacity.connect(lambda percent: item.setOpacity(percent / 100))
    state.opacity = 35          # every bound widget follows
    state.on_change("palette", legend.set_palette)

Setting a field to the value it already has emits nothing, so two widgets bound
both ways never loop. Values are validated on assignment (``ValueError``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.classes import PALETTES

VIEW_MODES = ("classes", "confidence", "probability")
PIN_COLOURS = ("#ffffff", "#00e5ff", "#ffb000", "#ff4fd8", "#7cff4f", "#ff6b6b", "#a98bff", "#c0c0c0")
OPACITY_STEP = 10  # percent per key press


def pin_colour(index: int) -> str:
    """Colour of the ``index``-th pinned spectrum (cycles through :data:`PIN_COLOURS`)."""
    return PIN_COLOURS[index % len(PIN_COLOURS)]


@dataclass(frozen=True)
class Pin:
    """A pinned pixel: ``row``, ``col`` in cube pixels and the colour of its marker and curve."""

    row: int
    col: int
    colour: str


class EventEmitter:
    """A list of callbacks called with the new value (``connect`` / ``disconnect`` / ``emit``)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[object], None]] = []

    def connect(self, callback: Callable[[object], None]) -> Callable[[object], None]:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[[object], None]) -> None:
        self._callbacks.remove(callback)

    def emit(self, value: object) -> None:
        for callback in list(self._callbacks):
            callback(value)


def _palette(value: object) -> str:
    if value not in PALETTES:
        raise ValueError(f"unknown palette {value!r} (known: {', '.join(PALETTES)})")
    return str(value)


def _opacity(value: object) -> int:
    """Percent, clamped to 0..100 (the keys step past the ends without complaint)."""
    try:
        percent = int(round(float(value)))
    except (TypeError, ValueError):
        raise ValueError(f"opacity must be a number of percent, got {value!r}") from None
    return min(max(percent, 0), 100)


def _view_mode(value: object) -> str:
    if value not in VIEW_MODES:
        raise ValueError(f"unknown view mode {value!r} (known: {', '.join(VIEW_MODES)})")
    return str(value)


def _class_id(value: object) -> int | None:
    return None if value is None else int(value)


def _hidden(value: Iterable[int]) -> frozenset[int]:
    return frozenset(int(c) for c in value)


def _pins(value: Iterable[Pin]) -> tuple[Pin, ...]:
    pins = tuple(value)
    for pin in pins:
        if not isinstance(pin, Pin):
            raise ValueError(f"pins must be Pin objects, got {pin!r}")
    return pins


# name -> (validator, default). Order is the order of ``fields()``.
_FIELDS: dict[str, tuple[Callable[[object], object], object]] = {
    "palette": (_palette, "thesis"),
    "opacity": (_opacity, 60),  # percent
    "visible": (bool, True),  # the overlay on or off (the RGB always shows)
    "hidden": (_hidden, frozenset()),  # class ids left out of the class map
    "contour": (bool, False),  # class boundaries instead of filled regions
    "outline": (bool, False),  # the tumour border only, drawn thick
    "view_mode": (_view_mode, "classes"),
    "probability_class": (_class_id, None),  # the class of the "probability" view
    "pins": (_pins, ()),
}


class _Events:
    """One :class:`EventEmitter` per field: ``state.events.<field>``."""

    def __init__(self, names: Iterable[str]) -> None:
        for name in names:
            setattr(self, name, EventEmitter())


class OverlayState:
    """Display options of the overlay; assigning a field calls its listeners with the new value."""

    def __init__(self, **values: object) -> None:
        object.__setattr__(self, "events", _Events(_FIELDS))
        for name, (validate, default) in _FIELDS.items():
            object.__setattr__(self, "_" + name, validate(values.pop(name, default)))
        if values:
            raise ValueError(f"unknown overlay fields: {', '.join(sorted(values))}")

    @staticmethod
    def fields() -> tuple[str, ...]:
        return tuple(_FIELDS)

    def __getattr__(self, name: str):
        if name in _FIELDS:
            return object.__getattribute__(self, "_" + name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: object) -> None:
        self.update(**{name: value})

    def update(self, **values: object) -> None:
        """Assign several fields at once: all are validated and stored before any listener runs."""
        for name in values:
            if name not in _FIELDS:
                raise AttributeError(f"OverlayState has no field {name!r} (fields: {', '.join(_FIELDS)})")
        checked = {name: _FIELDS[name][0](value) for name, value in values.items()}
        changed = [name for name, value in checked.items() if value != object.__getattribute__(self, "_" + name)]
        for name in changed:
            object.__setattr__(self, "_" + name, checked[name])
        for name in changed:
            getattr(self.events, name).emit(checked[name])

    def on_change(self, name: str, callback: Callable[[object], None]) -> Callable[[object], None]:
        """``callback(new_value)`` whenever field ``name`` changes; returns ``callback``."""
        if name not in _FIELDS:
            raise ValueError(f"unknown overlay field {name!r} (fields: {', '.join(_FIELDS)})")
        return getattr(self.events, name).connect(callback)

    # -- helpers used by keys, menus and the legend ------------------------
    def set_view_mode(self, mode: str, probability_class: int | None = None) -> None:
        """Switch to ``mode``; the probability view also names its class (listeners see both at once)."""
        self.update(view_mode=mode, probability_class=probability_class)

    def step_opacity(self, steps: int) -> int:
        """Change opacity by ``steps`` x :data:`OPACITY_STEP` percent (clamped); returns the new value."""
        self.opacity = self.opacity + steps * OPACITY_STEP
        return self.opacity

    def set_class_visible(self, class_id: int, visible: bool) -> None:
        hidden = set(self.hidden)
        (hidden.discard if visible else hidden.add)(int(class_id))
        self.hidden = hidden

    def toggle_class(self, class_id: int) -> bool:
        """Show a hidden class or hide a shown one; returns whether it is now visible."""
        visible = int(class_id) in self.hidden
        self.set_class_visible(class_id, visible)
        return visible

    def add_pin(self, row: int, col: int) -> Pin:
        """Pin pixel ``(row, col)`` in the next colour."""
        pin = Pin(int(row), int(col), pin_colour(len(self.pins)))
        self.pins = (*self.pins, pin)
        return pin

    def clear_pins(self) -> None:
        self.pins = ()
