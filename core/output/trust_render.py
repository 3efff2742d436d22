"""Drawing what the trust checks found: hatched out-of-distribution pixels, an "unusable" watermark.

Used by the GUI's overlay and by every export, so the screen and the files agree.
"""
from __future__ import annotations

import numpy as np

OOD_FILL = (150, 150, 150)  # grey: "unclassified", not any class colour
OOD_HATCH = (60, 60, 60)  # darker diagonal lines, so it reads as "no answer" even in greyscale print
OOD_LEGEND = "out of distribution (unlike the training data)"
UNUSABLE_WATERMARK = "UNUSABLE CAPTURE - shown anyway"
UNCERTAIN_HATCH = (255, 255, 255)  # white lines the other way round: the class colour stays visible between them
UNCERTAIN_LEGEND = "uncertain (the model is unsure of these pixels)"


def ood_hatch_rgba(mask: np.ndarray, *, spacing: int = 6) -> np.ndarray:
    """``uint8 (H, W, 4)``: opaque grey with diagonal hatch where ``mask`` (bool (H, W)) is True, transparent elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if spacing < 2:
        raise ValueError(f"spacing must be >= 2, got {spacing}")
    h, w = mask.shape
    out = np.zeros((h, w, 4), dtype=np.uint8)
    rows, cols = np.ogrid[:h, :w]
    line = ((rows + cols) % spacing) < max(1, spacing // 3)
    out[mask] = (*OOD_FILL, 255)
    out[mask & line] = (*OOD_HATCH, 255)
    return out


def uncertain_hatch_rgba(mask: np.ndarray, *, spacing: int = 6) -> np.ndarray:
    """``uint8 (H, W, 4)``: anti-diagonal white hatch lines where ``mask`` (bool (H, W)) is True, transparent elsewhere.

    Unlike the out-of-distribution hatch it leaves the pixels between its lines
    transparent: an uncertain pixel still has a class, the lines say not to trust it.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    if spacing < 2:
        raise ValueError(f"spacing must be >= 2, got {spacing}")
    h, w = mask.shape
    out = np.zeros((h, w, 4), dtype=np.uint8)
    rows, cols = np.ogrid[:h, :w]
    line = ((rows - cols) % spacing) < max(1, spacing // 3)
    out[mask & line] = (*UNCERTAIN_HATCH, 255)
    return out


def apply_uncertain(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """An RGB(A) ``uint8 (H, W, 3|4)`` image (e.g. the coloured map) with uncertain pixels hatched (a copy)."""
    image = np.array(rgb, dtype=np.uint8, copy=True)
    if mask is None or not np.any(mask):
        return image
    hatch = uncertain_hatch_rgba(mask)
    where = hatch[..., 3] > 0
    image[where, :3] = hatch[where, :3]
    if image.shape[-1] == 4:
        image[where, 3] = 255
    return image


def apply_ood(rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """An RGB(A) ``uint8 (H, W, 3|4)`` image with out-of-distribution pixels hatched grey (a copy)."""
    image = np.array(rgb, dtype=np.uint8, copy=True)
    if mask is None or not np.any(mask):
        return image
    hatch = ood_hatch_rgba(mask)
    where = hatch[..., 3] > 0
    image[where, :3] = hatch[where, :3]
    if image.shape[-1] == 4:
        image[where, 3] = 255
    return image


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
