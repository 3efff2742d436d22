"""Reading and writing Ximea raw frames (single-page 2-D TIFF, uint8 or uint16).

A capture is a triplet of frames of one shape: the raw image and its dark and
white references. The NEMESIS archive names them ``IDxxxxCyy.tif`` (raw),
``IDxxxxCDyy.tif`` (dark) and ``IDxxxxCWyy.tif`` (white); dataset folders name
them ``raw.tif``, ``dark.tif`` and ``white.tif``. This module never imports torch.
"""
from __future__ import annotations

import io
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from core.errors import CaptureError
from core.capture.metadata import CaptureMetadata, build_ximea_xml, parse_ximea_xml

_NEMESIS_RAW = re.compile(r"^(?P<id>ID\d+)C(?P<n>\d+)(?P<ext>\.tiff?)$", re.IGNORECASE)
_SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
# 64 Mpx: 30x the 2.2 Mpx Ximea sensor; a larger claim comes from a damaged header.
_MAX_PIXELS = 64 * 1024 * 1024
# TIFF compressions that change pixel values (JPEG quality 50 changed 8 % of a map that
# still graded "ok"): a raw frame's counts are the measurement, so these are refused.
LOSSY_COMPRESSIONS = frozenset({
    "OJPEG", "JPEG", "JPEG_99", "ALT_JPEG", "JPEG_LOSSY", "JPEG_2000_LOSSY", "JPEGXR", "JPEGXR_NDPI", "LERC",
    "WEBP", "WEBP_DEPRECATED", "APERIO_JP2000_YCBC", "APERIO_JP2000_RGB",
})


@dataclass(frozen=True)
class Capture:
    """A raw frame with its dark and white references (2-D, same shape)."""

    raw: np.ndarray
    dark: np.ndarray
    white: np.ndarray
    metadata: CaptureMetadata | None
    raw_path: Path | None = None
    dark_path: Path | None = None
    white_path: Path | None = None
    capture_id: str = "capture"
    # The references' own metadata (core.capture.quality compares serial, exposure, gain, geometry with the raw's).
    dark_metadata: CaptureMetadata | None = None
    white_metadata: CaptureMetadata | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.raw.shape


@contextmanager
def _tifffile_messages():
    """Collect what tifffile logs while reading one file.

    tifffile reports some damage (e.g. a bad first-page offset) only through
    logging; with no handler configured Python would print it to stderr as a
    second line beside our one-line error. The messages go into the error instead.
    """
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(" ".join(record.getMessage().split()))

    logger = logging.getLogger("tifffile")
    handler = _Collect(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def read_frame(source: str | Path | bytes, *, name: str | None = None) -> tuple[np.ndarray, CaptureMetadata | None]:
    """Read one 2-D uint8/uint16 frame ``(rows, cols)`` and its Ximea metadata (``None`` if absent).

    ``source`` is a path or the TIFF bytes; ``name`` labels bytes in error messages.
    Raises ``CaptureError`` naming the file for every unreadable or unsupported input:
    missing file, not a TIFF, truncated or corrupt TIFF, not 2-D, not uint8/uint16,
    malformed Ximea metadata.
    """
    frame, _, metadata = _read_first_page(source, name, pixels=True)
    return frame, metadata


def read_frame_header(
    source: str | Path | bytes, *, name: str | None = None
) -> tuple[tuple[int, int], np.dtype, CaptureMetadata | None]:
    """``((rows, cols), dtype, metadata)`` of a frame without reading its pixels.

    The same checks and errors as :func:`read_frame`, except damage inside the
    pixel data, which only reading finds.
    """
    _, (shape, dtype), metadata = _read_first_page(source, name, pixels=False)
    return shape, dtype, metadata


def _read_first_page(source: str | Path | bytes, name: str | None, *, pixels: bool):
    """``(frame or None, (shape, dtype), metadata)`` of the only page of a TIFF; ``CaptureError`` otherwise."""
    label = name if name is not None else str(source) if not isinstance(source, bytes) else "<bytes>"
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.exists():
            raise CaptureError(label, "file not found")
        if path.is_dir():
            raise CaptureError(label, "is a folder, not a TIFF file")
        if path.stat().st_size == 0:
            raise CaptureError(label, "empty file, not a TIFF")
    elif len(source) == 0:
        raise CaptureError(label, "empty file, not a TIFF")
    frame = None
    with _tifffile_messages() as messages:
        try:
            with tifffile.TiffFile(io.BytesIO(source) if isinstance(source, bytes) else source) as tif:
                if len(tif.pages) == 0:
                    raise CaptureError(label, _with_detail("TIFF holds no image (truncated or corrupt)", messages))
                if len(tif.pages) > 1:  # a stack is not a raw frame, even if its first page would pass
                    raise CaptureError(label, f"holds {len(tif.pages)} pages; expected one 2-D frame")
                page = tif.pages[0]
                description = page.description or ""
                # Check what the header claims before allocating: a damaged header
                # can claim terabytes, and a wrong kind of image needs no reading.
                shape = _check_layout(label, tuple(page.shape), page.dtype)
                dtype = np.dtype(page.dtype)
                compression = getattr(page.compression, "name", str(page.compression))
                if compression in LOSSY_COMPRESSIONS:
                    raise CaptureError(
                        label, f"frame is stored with lossy {compression} compression, which changes the sensor's counts; "
                        "export it uncompressed or with a lossless compression (deflate, LZW)",
                    )
                if pixels:
                    try:
                        frame = page.asarray()
                    except Exception as exc:  # noqa: BLE001 - sorted out below, codec problems first
                        _raise_codec_problem(label, page, exc)
                        raise
        except CaptureError:
            raise
        except PermissionError:
            raise CaptureError(label, "permission denied") from None
        except tifffile.TiffFileError as exc:
            text = str(exc)
            problem = "not a TIFF file" if "not a TIFF" in text or "invalid TIFF" in text else f"corrupt TIFF ({text})"
            raise CaptureError(label, _with_detail(problem, messages)) from None
        except MemoryError:
            raise CaptureError(label, "TIFF claims more pixel data than fits in memory (corrupt header?)") from None
        # tifffile and its codecs signal damage with many exception types
        # (struct.error for a header cut short, ValueError for missing strip bytes,
        # zlib.error for a broken compressed strip, ZeroDivisionError for a zero
        # tile size...): inside this block all mean "the file is broken".
        except Exception as exc:  # noqa: BLE001 - see above
            problem = f"truncated or corrupt TIFF ({exc})"
            raise CaptureError(label, _with_detail(problem, messages)) from None

    if frame is not None:
        frame = frame.reshape(_check_layout(label, frame.shape, frame.dtype))  # (1, rows, cols) -> (rows, cols)
    metadata = None
    if description.lstrip().startswith("<"):
        try:
            metadata = parse_ximea_xml(description)
        except ValueError as exc:
            raise CaptureError(label, f"bad Ximea metadata: {exc}") from None
    if metadata is not None and metadata.active_area_wh is not None:
        width, height = metadata.active_area_wh
        if (height, width) != tuple(shape):
            # A frame cut (or padded) after capture: its pixels no longer sit where the metadata says.
            raise CaptureError(
                label,
                f"frame is {shape[0]}x{shape[1]} (rows x cols) but its metadata's ActiveArea is {height}x{width}; "
                "was it cropped after capture?",
            )
    return frame, (shape, dtype), metadata


def _raise_codec_problem(label: str, page, exc: Exception) -> None:
    """``CaptureError`` when ``exc`` means "no decoder for this compression", not "damaged data"."""
    text = str(exc)
    tag = page.tags.get(259)
    value = None if tag is None else tag.value
    try:
        name = tifffile.COMPRESSION(value).name
    except ValueError:
        name = str(value)
    if "imagecodecs" in text:
        # LZW, PackBits, JPEG... are decoded by imagecodecs, a NeuroHSI dependency: a broken install.
        raise CaptureError(label, f"compression {name} needs the imagecodecs package, which is not installed") from None
    if "not a known COMPRESSION" in text:
        raise CaptureError(label, f"unsupported compression {name}") from None


def _check_layout(label: str, shape: tuple[int, ...], dtype) -> tuple[int, int]:
    """The 2-D ``(rows, cols)`` of a page, or ``CaptureError`` for a shape or pixel type we do not read."""
    if len(shape) > 2 and int(np.prod(shape[:-2])) == 1:
        shape = shape[-2:]
    if len(shape) != 2:
        raise CaptureError(label, f"expected a 2-D frame, got shape {shape}")
    if dtype is None or np.dtype(dtype) not in _SUPPORTED_DTYPES:
        raise CaptureError(label, f"unsupported pixel type {dtype} (expected uint8 or uint16)")
    if shape[0] * shape[1] > _MAX_PIXELS:
        raise CaptureError(label, f"frame {shape[0]}x{shape[1]} is implausibly large (corrupt header?)")
    return shape


def _with_detail(problem: str, messages: list[str]) -> str:
    return problem if not messages else f"{problem}: {messages[0]}"


def write_frame(path: str | Path, frame: np.ndarray, metadata: CaptureMetadata | None = None) -> Path:
    """Write a 2-D uint8/uint16 frame as a single-page TIFF, metadata as Ximea XML."""
    frame = np.asarray(frame)
    if frame.ndim != 2 or frame.dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"frame must be 2-D uint8 or uint16, got {frame.dtype} {frame.shape}")
    path = Path(path)
    description = build_ximea_xml(metadata) if metadata is not None else None
    tifffile.imwrite(path, frame, description=description, metadata=None)
    return path


def frame_to_bytes(frame: np.ndarray, metadata: CaptureMetadata | None = None) -> bytes:
    """The TIFF bytes ``write_frame`` would write."""
    buffer = io.BytesIO()
    description = build_ximea_xml(metadata) if metadata is not None else None
    tifffile.imwrite(buffer, np.asarray(frame), description=description, metadata=None)
    return buffer.getvalue()


def find_references(raw_path: str | Path) -> tuple[Path, Path]:
    """Dark and white reference paths for a raw frame, by naming convention.

    ``IDxxxxCyy.tif`` -> ``IDxxxxCDyy.tif``, ``IDxxxxCWyy.tif``; ``raw.tif`` (a
    dataset folder) -> ``dark.tif``, ``white.tif``. Raises ``CaptureError`` when
    the name follows no convention or a reference is missing.
    """
    raw_path = Path(raw_path)
    match = _NEMESIS_RAW.match(raw_path.name)
    if match:
        base, n, ext = match["id"], match["n"], match["ext"]
        dark, white = raw_path.with_name(f"{base}CD{n}{ext}"), raw_path.with_name(f"{base}CW{n}{ext}")
    elif raw_path.stem.lower() == "raw":
        dark, white = raw_path.with_name(f"dark{raw_path.suffix}"), raw_path.with_name(f"white{raw_path.suffix}")
    else:
        raise CaptureError(
            raw_path,
            "cannot find references by name (expected IDxxxxCyy.tif or raw.tif); give --dark and --white",
        )
    for kind, ref in (("dark", dark), ("white", white)):
        if not ref.is_file():
            raise CaptureError(raw_path, f"{kind} reference {ref.name} not found beside it")
    return dark, white


def capture_id_for(raw_path: str | Path) -> str:
    """``ID0018C01`` for NEMESIS names, the folder name for ``raw.tif``, else the stem."""
    raw_path = Path(raw_path)
    if raw_path.stem.lower() == "raw" and raw_path.parent.name:
        return raw_path.parent.name
    return raw_path.stem


def _check_same_shape(raw: np.ndarray, others: dict[str, tuple[np.ndarray, str]]) -> None:
    for kind, (frame, label) in others.items():
        if frame.shape != raw.shape:
            raise CaptureError(label, f"{kind} reference shape {frame.shape} differs from raw frame {raw.shape}")


def load_capture(
    raw_path: str | Path, dark_path: str | Path | None = None, white_path: str | Path | None = None
) -> Capture:
    """Read a capture triplet; references found by name when not given."""
    raw_path = Path(raw_path)
    raw, metadata = read_frame(raw_path)
    if dark_path is None or white_path is None:
        found_dark, found_white = find_references(raw_path)
        dark_path = dark_path or found_dark
        white_path = white_path or found_white
    dark_path, white_path = Path(dark_path), Path(white_path)
    dark, dark_meta = read_frame(dark_path)
    white, white_meta = read_frame(white_path)
    _check_same_shape(raw, {"dark": (dark, str(dark_path)), "white": (white, str(white_path))})
    return Capture(
        raw, dark, white, metadata, raw_path, dark_path, white_path, capture_id_for(raw_path), dark_meta, white_meta
    )


def capture_from_bytes(
    raw: bytes, dark: bytes, white: bytes, *, capture_id: str = "capture", max_shape: tuple[int, int] | None = None
) -> Capture:
    """A capture from the TIFF bytes of its three frames (as the scoring service receives them).

    ``max_shape`` (rows, cols), the sensor's, bounds every frame: all three headers are
    checked before any pixel is decoded, so a few KB of deflate cannot claim gigabytes.
    """
    if max_shape is not None:
        for name, data in (("raw", raw), ("dark", dark), ("white", white)):
            (rows, cols), _, _ = read_frame_header(data, name=name)
            if rows > max_shape[0] or cols > max_shape[1]:
                raise CaptureError(
                    name, f"frame is {rows}x{cols} (rows x cols), larger than the sensor ({max_shape[0]}x{max_shape[1]})"
                )
    raw_frame, metadata = read_frame(raw, name="raw")
    dark_frame, dark_meta = read_frame(dark, name="dark")
    white_frame, white_meta = read_frame(white, name="white")
    _check_same_shape(raw_frame, {"dark": (dark_frame, "dark"), "white": (white_frame, "white")})
    return Capture(
        raw_frame, dark_frame, white_frame, metadata, capture_id=capture_id, dark_metadata=dark_meta, white_metadata=white_meta
    )
