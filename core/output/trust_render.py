"""Drawing what the trust checks found: the "unusable" watermark (exports).

Flag layers (not measured, out of distribution, uncertain) are drawn by
:mod:`core.output.legend` (``flag_rgba``, ``apply_flags``), for the GUI and every export alike.
"""
from __future__ import annotations

import numpy as np

from core.output.legend import FLAG_STYLES

OOD_FILL, OOD_HATCH = FLAG_STYLES["ood"][1], FLAG_STYLES["ood"][2]  # grey fill, darker diagonal lines
UNUSABLE_WATERMARK = "UNUSABLE CAPTURE - shown anyway"


def watermark(image: np.ndarray, text: str = UNUSABLE_WATERMARK) -> np.ndarray:
    """``image`` (uint8 (H, W, 3|4)) with ``text`` written across it in red bands, top, middle and bottom."""
    from PIL import Image, ImageDraw, ImageFont

    array = np.asarray(image, dtype=np.uint8)
    mode = "RGBA" if array.shape[-1] == 4 else "RGB"
    canvas = Image.fromarray(array, mode=mode).convert("RGBA")
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    h, w = array.shape[:2]
    size = max(8, min(h // 10, w // max(len(text) // 2, 1)))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = ImageFont.load_default()
    band = size + 6
    for top in (2, (h - band) // 2, h - band - 2):
        draw.rectangle([0, top, w, top + band], fill=(200, 0, 0, 170))
        draw.text((4, top + 3), text, fill=(255, 255, 255, 255), font=font)
    out = np.asarray(Image.alpha_composite(canvas, layer).convert(mode))
    return out
