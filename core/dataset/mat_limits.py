"""Declared sizes of a MATLAB v5 ``.mat`` file, checked before scipy reads it.

A 389 KB compressed ``.mat`` holding 20000 x 20000 zeros took 3.9 GB before the import
refused it, and ``scipy.io.whosmat`` itself inflates a compressed variable whole (283 MB
for that file). :func:`check_mat_sizes` reads only each variable's header: the 8-byte tag,
and for a compressed (``miCOMPRESSED``) variable the first few KB of its zlib stream,
which hold the array class, dimensions and name (MATLAB 7 MAT-file format, "Data Element
Format"). A few KB of memory whatever the file claims.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

from core.errors import DatasetError

MI_MATRIX, MI_COMPRESSED, MI_INT32, MI_UINT32 = 14, 15, 5, 6
# Bytes per element of each mxClass; cells, structs and objects become Python objects
# (an 8-byte pointer plus the object): 64 is a floor, not an exact cost.
_ITEM_BYTES = {1: 64, 2: 64, 3: 64, 4: 4, 5: 16, 6: 8, 7: 4, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4, 13: 4, 14: 8, 15: 8}
_HEAD_BYTES = 4096  # inflated bytes read per compressed variable: tag, flags, dims and name fit
_MAX_DIMS = 32


def check_mat_sizes(path: str | Path, limit: int) -> int:
    """Total bytes the variables of ``path`` declare; ``DatasetError`` naming the file when over ``limit``.

    Also ``DatasetError`` for a header that cannot be parsed (truncated, a corrupt zlib
    stream). MAT v4 files (no 128-byte header; never compressed, so no larger in memory
    than on disk) and v7.3 (HDF5, refused by the reader) are left to the reader.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        header = fh.read(128)
        if len(header) < 128 or header[126:128] not in (b"IM", b"MI") or header[:4] == b"\x89HDF":
            return 0
        endian = "<" if header[126:128] == b"IM" else ">"
        total = 0
        while True:
            tag = fh.read(8)
            if len(tag) < 8:
                break
            kind, nbytes = struct.unpack(endian + "II", tag)
            if kind >> 16:  # small data element: 4 bytes of data in the tag; not a variable
                continue
            if kind == MI_COMPRESSED:
                name, declared = _matrix_size(_inflate_head(fh, nbytes, path), endian, path)
            elif kind == MI_MATRIX:
                head = fh.read(min(nbytes, _HEAD_BYTES))
                name, declared = _matrix_size(tag + head, endian, path)
                fh.seek(nbytes - len(head), 1)
            else:
                fh.seek(nbytes, 1)
                continue
            total += declared
            if total > limit:
                raise DatasetError(
                    path, f"variable {name!r} declares {declared / 1e6:.0f} MB (in all {total / 1e6:.0f} MB), over the "
                    f"{limit / 1e6:.0f} MB a NEMESIS file may hold; refused before reading",
                )
            fh.seek((8 - nbytes % 8) % 8 if kind == MI_MATRIX else 0, 1)
    return total


def _inflate_head(fh, nbytes: int, path: Path) -> bytes:
    """The first ``_HEAD_BYTES`` inflated bytes of a compressed variable; the file is left after the variable."""
    start = fh.tell()
    inflater = zlib.decompressobj()
    head = b""
    consumed = 0
    try:
        while len(head) < _HEAD_BYTES and consumed < nbytes and not inflater.eof:
            chunk = fh.read(min(65536, nbytes - consumed))
            if not chunk:
                break
            consumed += len(chunk)
            head += inflater.decompress(chunk, _HEAD_BYTES - len(head))
    except zlib.error as exc:
        raise DatasetError(path, f"corrupt compressed variable in the .mat file (zlib: {exc})") from None
    fh.seek(start + nbytes)
    if len(head) < 8:
        raise DatasetError(path, "truncated compressed variable in the .mat file")
    return head


def _matrix_size(element: bytes, endian: str, path: Path) -> tuple[str, int]:
    """(name, bytes) an ``miMATRIX`` element declares: the larger of its tag's size and class x dimensions."""
    try:
        kind, nbytes = struct.unpack_from(endian + "II", element, 0)
        if kind != MI_MATRIX:
            return "?", 0
        if nbytes == 0:  # an empty variable
            return "?", 0
        flags_kind, _ = struct.unpack_from(endian + "II", element, 8)
        flags = struct.unpack_from(endian + "I", element, 16)[0]
        mx_class, complex_flag = flags & 0xFF, bool(flags & 0x0800)
        dims_kind, dims_nbytes = struct.unpack_from(endian + "II", element, 24)
        if flags_kind != MI_UINT32 or dims_kind != MI_INT32 or not 8 <= dims_nbytes <= 4 * _MAX_DIMS:
            raise ValueError("unexpected array header")
        dims = struct.unpack_from(endian + f"{dims_nbytes // 4}i", element, 32)
        name_at = 32 + dims_nbytes + (8 - dims_nbytes % 8) % 8
        name = _name(element, name_at, endian)
    except (struct.error, ValueError):
        raise DatasetError(path, "corrupt variable header in the .mat file") from None
    if min(dims) < 0:
        raise DatasetError(path, f"variable {name!r} declares negative dimensions {dims}")
    elements = 1
    for d in dims:
        elements *= d
    return name, max(nbytes, elements * _ITEM_BYTES.get(mx_class, 8) * (2 if complex_flag else 1))


def _name(element: bytes, at: int, endian: str) -> str:
    kind, nbytes = struct.unpack_from(endian + "II", element, at)
    if kind >> 16:  # small element: length in the upper half, up to 4 characters in the tag
        length = kind >> 16
        raw = element[at + 4:at + 4 + min(length, 4)]
    else:
        raw = element[at + 8:at + 8 + min(nbytes, 64)]
    return raw.decode("latin-1", "replace")
