"""Drawing a classification: colour map, legend and overlay picture (numpy + Pillow only).

:mod:`core.output.export` encodes and writes these pictures for ``neurohsi classify``,
the GUI's export and the scoring service, so a map looks the same wherever it
was made. Every overlay carries the model identity and the research-use notice
burned into the pixels, so a screenshot or a printed copy cannot lose them.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.classes import class_table

RESEARCH_NOTICE = "Research use only - not for diagnostic use"
LEGEND_WIDTH = 300  # px
MIN_IMAGE_WIDTH = 800  # overlays narrower than this are enlarged by an integer factor
_FONT_SIZE = 15
_PAD = 12


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 (H, W) map, got {labels.dtype} {labels.shape}")
    return labels


def colour_map(labels: np.ndarray, *, palette: str = "thesis") -> np.ndarray:
    """Label map ``uint8 (H, W)`` -> RGB ``uint8 (H, W, 3)``; 0 (and unknown ids) black."""
    return class_table().colourise(_check_labels(labels), palette)


def blend(rgb: np.ndarray, labels: np.ndarray, *, palette: str = "thesis", alpha: float = 0.45) -> np.ndarray:
    """``uint8 (H, W, 3)``: class colours blended over ``rgb`` with ``alpha`` where the label is not 0."""
    labels = _check_labels(labels)
    rgb = np.asarray(rgb)
    if rgb.shape != labels.shape + (3,) or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 {labels.shape + (3,)}, got {rgb.dtype} {rgb.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within 0..1, got {alpha}")
    colours = colour_map(labels, palette=palette).astype(np.float32)
    out = rgb.astype(np.float32)
    mask = labels > 0
    out[mask] = (1.0 - alpha) * out[mask] + alpha * colours[mask]
    return (out + 0.5).astype(np.uint8)


def _font(size: int = _FONT_SIZE):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def overlay_image(
    rgb: np.ndarray,
    labels: np.ndarray,
    *,
    class_ids,
    class_names,
    model_lines: tuple[str, ...] = (),
    palette: str = "thesis",
    alpha: float = 0.45,
    scale: int | None = None,
    rows=None,
) -> Image.Image:
    """The overlay picture: blended map (enlarged ``scale`` times, nearest neighbour), a legend panel on
    the right (colour, class name, % of frame), ``model_lines`` (model identity) under the legend, and
    the research-use notice in a banner across the bottom. RGB ``PIL.Image``.
    ``rows``: the :func:`core.output.legend.legend_rows` to list (default: from ``labels``), so the
    file's legend is the one on screen (flag layers, hidden classes).
    """
    blended = blend(rgb, labels, palette=palette, alpha=alpha)
    h, w = labels.shape
    if scale is None:
        scale = max(1, -(-MIN_IMAGE_WIDTH // max(w, 1)))
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    picture = Image.fromarray(blended).resize((w * scale, h * scale), Image.NEAREST)
    font, small = _font(), _font(_FONT_SIZE - 2)
    line = _FONT_SIZE + 8
    if rows is None:
        from core.output.legend import legend_rows

        rows = legend_rows(labels, class_ids, class_names, palette=palette)
    legend_h = _PAD + line * (len(rows) + 1) + _PAD + line * len(model_lines) + _PAD
    banner_h = line + _PAD
    height = max(picture.height, legend_h) + banner_h
    canvas = Image.new("RGB", (picture.width + LEGEND_WIDTH, height), (24, 24, 24))
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y = picture.width + _PAD, _PAD
    text_w = LEGEND_WIDTH - 2 * _PAD
    draw.text((x0, y), "Tissue classes (% of frame)", fill=(235, 235, 235), font=font)
    y += line
    swatch = _FONT_SIZE
    for row in rows:
        draw.rectangle([x0, y + 1, x0 + swatch, y + 1 + swatch], fill=row.colour, outline=(200, 200, 200))
        if row.hatch is not None:  # a flag layer: its hatch, as drawn on the map
            draw.line([x0, y + 1 + swatch, x0 + swatch, y + 1], fill=row.hatch, width=2)
        label = row.text()
        draw.text((x0 + swatch + 8, y), _fit(draw, label, font, text_w - swatch - 8), fill=(235, 235, 235), font=font)
        y += line
    y += _PAD
    for text in model_lines:
        draw.text((x0, y), _fit(draw, text, small, text_w), fill=(190, 190, 190), font=small)
        y += line
    banner_y = height - banner_h
    draw.rectangle([0, banner_y, canvas.width, height], fill=(120, 0, 0))
    draw.text((_PAD, banner_y + _PAD // 2), RESEARCH_NOTICE, fill=(255, 255, 255), font=font)
    return canvas


def model_identity_lines(info, *, source: str = "local", classified_at: str | None = None) -> tuple[str, ...]:
    """Lines naming the model for an overlay: name and version, sha256 prefix, where and when it ran."""
    lines = (f"Model: {info.name} v{info.version}", f"sha256 {info.sha256[:16]}")
    lines += (f"Scored by: {source}",) if source != "local" else ("Scored locally",)
    return lines + ((f"Classified {classified_at}",) if classified_at else ())
