"""One legend model for the screen and every export: class shares and flag layers.

A *flag layer* marks pixels whose class must not be read as an answer, drawn hatched
over (or instead of) the class colour: ``masked`` (not measured: clipped raw, outside
the valid mask, no tissue; label 0), ``ood`` (out of distribution) and ``uncertain``
(per-pixel uncertainty). :func:`flag_layers` builds them from a classification result;
:func:`legend_rows` gives every row the legend shows, with shares of the frame that add
up to 100 %: a pixel counts once, for the first flag layer that covers it (in
:data:`FLAG_ORDER`), else for its class. The GUI's legend, the theatre legend, the
overlay PNG and ``classify --json`` all read these rows, so they never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.classes import class_table

FLAG_ORDER = ("masked", "ood", "uncertain")
# key -> (legend name, fill RGB or None to keep the class colour, hatch RGB, hatch direction)
FLAG_STYLES: dict[str, tuple[str, tuple[int, int, int] | None, tuple[int, int, int], str]] = {
    "masked": ("not measured", (0, 0, 0), (235, 235, 235), "cross"),
    "ood": ("out of distribution", (150, 150, 150), (60, 60, 60), "diagonal"),
    "uncertain": ("uncertain", None, (255, 255, 255), "antidiagonal"),
}
FLAG_MEANINGS = {  # what each flag means, for tooltips and docs
    "masked": "clipped raw (saturated, or at or below dark) in some band, invalid, or no tissue: not classified",
    "ood": "unlike the spectra the model was trained on",
    "uncertain": "the model is unsure of the class",
}
NOT_CLASSIFIED = "not classified"


@dataclass(frozen=True)
class FlagLayer:
    """Pixels drawn hatched instead of as an answer: ``mask`` bool (H, W); ``fraction`` of the frame, 0..1."""

    key: str
    name: str
    fill: tuple[int, int, int] | None
    hatch: tuple[int, int, int]
    pattern: str  # "cross" | "diagonal" | "antidiagonal"
    mask: np.ndarray
    fraction: float


@dataclass(frozen=True)
class LegendRow:
    """One legend row: a class (``key`` its id) or a flag layer (``key`` its name); ``fraction`` of the frame."""

    key: int | str
    name: str
    colour: tuple[int, int, int]
    fraction: float
    hidden: bool = False  # a class the user hid: listed as hidden, never dropped
    hatch: tuple[int, int, int] | None = None  # flag layers: the hatch colour

    @property
    def is_flag(self) -> bool:
        return isinstance(self.key, str)

    def text(self) -> str:
        """``"Healthy 61.2 %"``, ``"Tumour (hidden) 3.0 %"``: what every legend prints."""
        return f"{self.name}{' (hidden)' if self.hidden else ''} {100.0 * self.fraction:.1f} %"


def make_layer(key: str, mask: np.ndarray, fraction: float | None = None) -> FlagLayer:
    """A flag layer of ``key`` (one of :data:`FLAG_ORDER`) for ``mask`` bool (H, W)."""
    if key not in FLAG_STYLES:
        raise ValueError(f"flag layer must be one of {FLAG_ORDER}, got {key!r}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"{key} mask must be (H, W), got shape {mask.shape}")
    name, fill, hatch, pattern = FLAG_STYLES[key]
    share = float(mask.mean()) if fraction is None and mask.size else float(fraction or 0.0)
    return FlagLayer(key, name, fill, hatch, pattern, mask, share)


def flag_layers(result) -> list[FlagLayer]:
    """The flag layers of a classification result whose mask is known (``masked_mask``, ``ood_mask``,
    ``uncertain_mask``), in :data:`FLAG_ORDER`; a layer is listed even when empty (its 0.0 % is news)."""
    layers = []
    for key in FLAG_ORDER:
        mask = getattr(result, f"{key}_mask", None)
        if mask is not None:
            layers.append(make_layer(key, mask))
    return layers


def legend_rows(
    labels: np.ndarray,
    class_ids,
    class_names,
    *,
    flags=(),
    hidden=(),
    palette: str = "thesis",
) -> list[LegendRow]:
    """Every legend row for a label map ``uint8 (H, W)``: one per model class (model order, hidden ones
    marked), one per flag layer, and "not classified" for any other label-0 pixels. Shares add to 1."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    total = max(labels.size, 1)
    free = np.ones(labels.shape, dtype=bool)  # pixels no flag layer has claimed yet
    flag_rows = []
    for layer in sorted(flags, key=lambda f: FLAG_ORDER.index(f.key)):
        if layer.mask.shape != labels.shape:
            raise ValueError(f"{layer.key} mask {layer.mask.shape} does not match labels {labels.shape}")
        claimed = layer.mask & free
        free &= ~layer.mask
        colour = layer.fill if layer.fill is not None else layer.hatch
        flag_rows.append(LegendRow(layer.key, layer.name, colour, np.count_nonzero(claimed) / total, hatch=layer.hatch))
    counts = np.bincount(labels[free].ravel().astype(np.int64), minlength=256)
    table = class_table()
    hidden = {int(c) for c in hidden}
    rows = []
    for class_id, name in zip(class_ids, class_names):
        try:
            colour = table.colour(int(class_id), palette)
        except KeyError:  # a model class the table does not know: grey, still listed
            colour = (128, 128, 128)
        rows.append(LegendRow(int(class_id), str(name), colour, counts[int(class_id)] / total, int(class_id) in hidden))
    rows += flag_rows
    if counts[0]:
        rows.append(LegendRow(NOT_CLASSIFIED, NOT_CLASSIFIED, (0, 0, 0), counts[0] / total))
    return rows


def flag_rgba(layers, shape: tuple[int, int] | None = None, *, spacing: int = 6) -> np.ndarray:
    """``uint8 (H, W, 4)``: the flag layers drawn (first in :data:`FLAG_ORDER` on top), transparent elsewhere."""
    layers = sorted(layers, key=lambda f: FLAG_ORDER.index(f.key))
    if shape is None:
        if not layers:
            raise ValueError("flag_rgba needs a shape when there are no layers")
        shape = layers[0].mask.shape
    h, w = shape
    out = np.zeros((h, w, 4), dtype=np.uint8)
    rows, cols = np.ogrid[:h, :w]
    width = max(1, spacing // 3)
    lines = {
        "diagonal": ((rows + cols) % spacing) < width,
        "antidiagonal": ((rows - cols) % spacing) < width,
    }
    lines["cross"] = lines["diagonal"] | lines["antidiagonal"]
    for layer in reversed(layers):  # later layers first, so the first one wins where they overlap
        mask = layer.mask
        if layer.fill is not None:
            out[mask] = (*layer.fill, 255)
        hatched = mask & lines[layer.pattern]
        out[hatched] = (*layer.hatch, 255)
    return out


def apply_flags(rgb: np.ndarray, layers) -> np.ndarray:
    """An RGB(A) ``uint8 (H, W, 3|4)`` image with the flag layers drawn over it (a copy)."""
    image = np.array(rgb, dtype=np.uint8, copy=True)
    layers = [layer for layer in layers if layer.mask.any()]
    if not layers:
        return image
    drawn = flag_rgba(layers, image.shape[:2])
    where = drawn[..., 3] > 0
    image[where, :3] = drawn[where, :3]
    if image.shape[-1] == 4:
        image[where, 3] = 255
    return image
