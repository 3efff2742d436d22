"""Label maps: uint8 class ids (H, W) stored as palette PNGs, and NEMESIS raw codes.

Written by :func:`write_label_png` here (the one label-PNG writer), read by :func:`read_label_png`.
Class ids are the thesis's label4Class (``core.classes``): 0 unlabelled,
1 healthy, 2 tumour, 3 venous blood, 4 arterial blood, 5 dura mater. A label
PNG is mode ``P`` (palette) whose pixel values *are* the class ids; the palette
only makes the file readable in an image viewer (thesis colours).
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.classes import CLASS_IDS, UNLABELLED, class_table
from core.errors import DatasetError
from core.fileio import atomic_write

MAX_CLASS_ID = max(CLASS_IDS)


def validate_labels(labels: np.ndarray, *, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as uint8 (H, W) after checking shape, type and values 0..5.

    Raises ``ValueError`` naming ``name`` and the problem.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D label map, got shape {labels.shape}")
    if labels.dtype.kind not in "iub":
        raise ValueError(f"{name}: label map must hold integers, got {labels.dtype}")
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < UNLABELLED or high > MAX_CLASS_ID:
            bad = low if low < UNLABELLED else high
            raise ValueError(f"{name}: value {bad} is not a class id (0..{MAX_CLASS_ID})")
    return labels.astype(np.uint8, copy=False)


# Label maps are cube-sized (217 x 409 for the thesis camera); a header claiming more than
# 16 Mpx is damaged or a decompression bomb, refused before any pixel is decoded.
MAX_LABEL_PIXELS = 16 * 1024 * 1024


def _check_label_size(path: Path, image) -> None:
    if image.format != "PNG":
        # A JPEG renamed labels.png decodes as greyscale class ids, but its compression has
        # changed the ids along every boundary (110 of 2400 pixels in the fuzz pass).
        raise DatasetError(
            path, f"label map is a {image.format or 'non-PNG'} image, not a PNG: lossy formats change labels; save it as PNG"
        )
    width, height = image.size
    if width * height > MAX_LABEL_PIXELS:
        raise DatasetError(path, f"label map claims {width} x {height} pixels, far more than any cube (decompression bomb?)")


def label_png_shape(path: str | Path) -> tuple[int, int]:
    """(rows, cols) of a label PNG without decoding its pixels. ``DatasetError`` if unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            _check_label_size(path, image)
            width, height = image.size
    except FileNotFoundError:
        raise DatasetError(path, "label map not found") from None
    except Image.DecompressionBombError:
        raise DatasetError(path, "label map claims far more pixels than any cube (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(path, f"not a readable PNG image ({exc.__class__.__name__})") from None
    return height, width


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a label PNG (palette ``P`` or greyscale ``L``) as uint8 class ids (H, W).

    Raises ``DatasetError`` naming the file when it is missing, not a PNG, not a
    single-channel image, or holds values that are not class ids.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("P", "L"):
                raise DatasetError(path, f"label map must be a palette or greyscale PNG, got mode {mode}")
            _check_label_size(path, image)  # before decoding: the header can claim gigapixels
            labels = np.array(image)
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(path, "label map not found") from None
    except Image.DecompressionBombError:
        raise DatasetError(path, "label map claims far more pixels than any cube (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(path, f"not a readable PNG image ({exc.__class__.__name__})") from None
    try:
        return validate_labels(labels, name="label map")
    except ValueError as exc:
        raise DatasetError(path, str(exc).removeprefix("label map: ")) from None


@lru_cache(maxsize=1)
def _nemesis_lut() -> np.ndarray:
    """uint8 (65536,) raw NEMESIS code -> class id."""
    lut = np.zeros(2**16, dtype=np.uint8)
    lut[100:200] = 1  # 1xx: healthy tissue (grey and white matter)
    lut[200:300] = 2  # 2xx: tumour (all grades)
    lut[[300, 301, 303, 310]] = 3  # venous blood and vessels
    lut[302] = 4  # arterial blood
    lut[320:323] = 5  # dura mater
    # 330/331 (skull bone), 4xx (background) and every other code stay 0: not a class.
    lut.setflags(write=False)
    return lut


def map_nemesis_codes(codes: np.ndarray) -> np.ndarray:
    """NEMESIS ``groundTruthMap`` raw codes (any shape, unsigned 16-bit range) -> uint8 class ids.

    1xx healthy=1, 2xx tumour=2, 300/301/303/310 venous=3, 302 arterial=4,
    320-322 dura=5; bone (330/331), background (4xx) and any other code -> 0.
    """
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iub":
        # MATLAB exports sometimes hold whole numbers as double: accept those, nothing else.
        if codes.dtype.kind == "f" and codes.size and np.all(np.isfinite(codes)) and np.all(codes == np.round(codes)):
            codes = codes.astype(np.int64)
        elif codes.dtype.kind == "f" and codes.size == 0:
            codes = codes.astype(np.int64)
        else:
            raise ValueError(f"NEMESIS label codes must be integers, got {codes.dtype}")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= 2**16):
        raise ValueError("NEMESIS label codes must lie in 0..65535")
    return _nemesis_lut()[codes.astype(np.intp, copy=False)]


def label_counts(labels: np.ndarray) -> dict[int, int]:
    """Labelled pixels per class id, ``{1: n1, ..., 5: n5}`` (unlabelled 0 is not counted)."""
    labels = validate_labels(labels)
    counts = np.bincount(labels.ravel(), minlength=MAX_CLASS_ID + 1)
    return {class_id: int(counts[class_id]) for class_id in CLASS_IDS}


def label_png_bytes(labels: np.ndarray, *, palette: str = "thesis", text: dict[str, str] | None = None) -> bytes:
    """A label map ``(H, W)`` of class ids 0..5 encoded as a palette ("P") PNG.

    Pixel values *are* the class ids; the palette (class colours of ``palette``)
    only makes the file readable in an image viewer. ``text`` adds PNG text chunks.
    Raises ``ValueError`` when ``labels`` is not a 2-D integer map of class ids.
    """
    from PIL import Image, PngImagePlugin

    labels = np.ascontiguousarray(validate_labels(labels))
    # Built from raw bytes so the pixel values stay the class ids (no quantisation).
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    image.putpalette(class_table().lut(palette)[:, :3].reshape(-1).tolist())
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    # compress_level 1: label maps are mostly runs; ~5x faster than the default and barely larger.
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def write_label_png(
    path: str | Path, labels: np.ndarray, *, palette: str = "thesis", text: dict[str, str] | None = None
) -> Path:
    """Write a label map (class ids 0..5, ``(H, W)``) as a palette PNG; :func:`read_label_png` reads it.

    Raises ``ValueError`` naming ``path`` when ``labels`` is not a label map.
    """
    path = Path(path)
    try:
        data = label_png_bytes(labels, palette=palette, text=text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return atomic_write(path, data)
