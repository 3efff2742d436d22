"""Exports of a classification: overlay PNG (legend and model identity burned in), label PNG, NPZ.

The overlay PNG is what leaves the theatre in reports, so it always carries the
model identity (name, version, sha256 prefix), where the map was computed and
the research-use disclaimer. Pure numpy + Pillow; no Qt.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.overlay import class_fractions, composite
from core.classes import class_table

DISCLAIMER = "Research use only — not for diagnostic use"
MIN_EXPORT_WIDTH = 800  # px: small cubes (409 px wide) are upscaled, nearest neighbour
LEGEND_WIDTH = 330


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def overlay_image(
    rgb: np.ndarray,
    overlay_rgba: np.ndarray,
    *,
    opacity: float,
    labels: np.ndarray,
    palette: str,
    model_label: str,
    source: str,
    capture_id: str,
    hidden=(),
) -> Image.Image:
    """Composite RGB ``(H, W, 3)`` + overlay ``(H, W, 4)`` and a legend panel on the right."""
    image = composite(rgb, overlay_rgba, opacity)
    scale = max(1, int(np.ceil(MIN_EXPORT_WIDTH / image.shape[1])))
    if scale > 1:
        image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    h, w = image.shape[:2]
    canvas = Image.new("RGB", (w + LEGEND_WIDTH, max(h, 360)), (20, 23, 26))
    canvas.paste(Image.fromarray(image), (0, 0))
    draw = ImageDraw.Draw(canvas)
    title, body, small = _font(22), _font(17), _font(14)
    x, y = w + 16, 14
    draw.text((x, y), capture_id, font=title, fill=(240, 240, 240))
    y += 36
    table = class_table()
    fractions = class_fractions(labels, table.ids)
    for tissue in table.classes:
        colour = tissue.colours[palette]
        draw.rectangle((x, y + 2, x + 20, y + 22), fill=colour, outline=(128, 128, 128))
        state = " (hidden)" if tissue.id in set(hidden) else ""
        draw.text((x + 30, y), f"{tissue.name}{state}", font=body, fill=(230, 230, 230))
        draw.text((x + LEGEND_WIDTH - 90, y), f"{100 * fractions[tissue.id]:5.1f} %", font=body, fill=(230, 230, 230))
        y += 30
    y += 12
    for line in ("Model: " + model_label, "Computed: " + ("locally" if source == "local" else source)):
        for chunk in _wrap(line, 36):
            draw.text((x, y), chunk, font=small, fill=(200, 200, 200))
            y += 20
    y += 10
    for chunk in _wrap(DISCLAIMER, 30):
        draw.text((x, y), chunk, font=body, fill=(255, 210, 122))
        y += 24
    return canvas


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def write_overlay_png(path: str | Path, image: Image.Image) -> Path:
    path = Path(path)
    image.save(path, format="PNG", optimize=True)
    return path


def write_labels_png(path: str | Path, labels: np.ndarray) -> Path:
    """Class map ``uint8 (H, W)`` as the project's palette PNG (``core.labels``)."""
    from core.labels import write_label_png

    return write_label_png(path, labels)


def write_npz(path: str | Path, result) -> Path:
    """``labels`` uint8 (H, W), ``probabilities`` float32 (H, W, C), ``class_ids`` and model identity."""
    path = Path(path)
    info = result.model
    with path.open("wb") as fh:
        np.savez_compressed(
            fh,
            labels=result.labels,
            probabilities=result.probabilities.astype(np.float32, copy=False),
            class_ids=np.asarray(info.class_ids, dtype=np.uint8),
            model_name=np.asarray(info.name),
            model_version=np.asarray(info.version),
            model_sha256=np.asarray(info.sha256),
            source=np.asarray(result.source),
        )
    return path
