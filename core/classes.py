"""The class table: ids, names and colours, from ``resources/classes.json``.

Ids are the thesis's label4Class: 0 unlabelled, 1 healthy, 2 tumour,
3 venous blood, 4 arterial blood, 5 dura mater.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from resources import CLASS_TABLE_PATH

PALETTES = ("thesis", "colourblind")
UNLABELLED = 0


@dataclass(frozen=True)
class TissueClass:
    id: int
    key: str  # machine name, e.g. "tumour"
    name: str  # display name, e.g. "Tumour"
    colours: dict  # palette name -> (r, g, b) uint8


@dataclass(frozen=True)
class ClassTable:
    classes: tuple[TissueClass, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.classes)

    def by_id(self, class_id: int) -> TissueClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(f"unknown class id {class_id}")

    def colour(self, class_id: int, palette: str = "thesis") -> tuple[int, int, int]:
        if class_id == UNLABELLED:
            return (0, 0, 0)
        return self.by_id(class_id).colours[_check_palette(palette)]

    def lut(self, palette: str = "thesis", *, alpha: int = 255) -> np.ndarray:
        """Look-up table ``uint8 (256, 4)`` RGBA: class id -> colour, unlabelled transparent."""
        table = np.zeros((256, 4), dtype=np.uint8)
        for c in self.classes:
            table[c.id, :3] = c.colours[_check_palette(palette)]
            table[c.id, 3] = alpha
        return table

    def colourise(self, labels: np.ndarray, palette: str = "thesis") -> np.ndarray:
        """Label map ``(H, W)`` -> RGB ``uint8 (H, W, 3)`` (unlabelled black)."""
        return self.lut(palette)[labels, :3]


def _check_palette(palette: str) -> str:
    if palette not in PALETTES:
        raise ValueError(f"unknown palette {palette!r} (known: {', '.join(PALETTES)})")
    return palette


def _hex(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))


@lru_cache(maxsize=1)
def class_table() -> ClassTable:
    """The class table shipped in ``resources/classes.json``."""
    spec = json.loads(CLASS_TABLE_PATH.read_text())
    return ClassTable(
        tuple(
            TissueClass(c["id"], c["key"], c["name"], {p: _hex(c[p]) for p in PALETTES}) for c in spec["classes"]
        )
    )


CLASS_IDS: tuple[int, ...] = (1, 2, 3, 4, 5)
