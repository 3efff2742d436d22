"""NEMESIS ground truths that do not match the cube one to one: cropped maps, odd value types.

Public NEMESIS-format ground truths are often ``SNAPgt<ID>_cropped_Pre-processed.mat``
maps smaller than the cube. ``import-nemesis`` places such a map at a crop offset
(row, col of its top-left corner in the cube) given per capture on the command line
or in a small JSON file, and says when a map does not fit and no offset was given.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import DatasetError
from core.fileio import load_json_file


def kind_name(dtype: np.dtype) -> str:
    return {"b": "true/false values", "U": "text", "S": "text", "O": "a cell or struct array"}.get(dtype.kind, str(dtype))


def place_cropped_ground_truth(
    labels: np.ndarray, cube_hw: tuple[int, int], offset_rc: tuple[int, int] | None, *, gt_path: Path, raw_name: str
) -> np.ndarray:
    """A ground-truth map ``(h, w)`` placed in a cube-sized map ``cube_hw`` at ``offset_rc`` (row, col).

    Public NEMESIS ground truths are often ``*_cropped_*`` maps smaller than the cube;
    their top-left corner in the cube is the crop offset. Without an offset a map must
    be exactly the cube's size. ``DatasetError`` says which and how to give the offset.
    """
    h, w = labels.shape
    H, W = cube_hw
    if offset_rc is None:
        if (h, w) == (H, W):
            return labels
        hint = (
            f"; if it is cropped, give its top-left corner in the cube with --crop-offset {Path(raw_name).stem}=ROW,COL "
            "or --crop-offsets FILE.json"
            if h <= H and w <= W
            else ""
        )
        raise DatasetError(
            gt_path, f"ground truth does not fit {raw_name}: map is {h}x{w}, the cube is {H}x{W}{hint}"
        )
    row, col = offset_rc
    if row < 0 or col < 0 or row + h > H or col + w > W:
        raise DatasetError(
            gt_path,
            f"ground truth {h}x{w} at crop offset ({row}, {col}) does not fit the {H}x{W} cube of {raw_name}",
        )
    placed = np.zeros((H, W), dtype=labels.dtype)
    placed[row : row + h, col : col + w] = labels
    return placed


def read_crop_offsets(path: str | Path) -> dict[str, tuple[int, int]]:
    """``{"ID0018C01": [row, col], ...}`` (or ``{"row": r, "col": c}`` values) from a small JSON file."""
    path = Path(path)
    try:
        content = load_json_file(path, DatasetError)
    except FileNotFoundError:
        raise DatasetError(path, "crop-offset file not found") from None
    if not isinstance(content, dict):
        raise DatasetError(path, 'must hold a JSON object {"<capture id>": [row, col], ...}')
    offsets = {}
    for key, value in content.items():
        if isinstance(value, dict):
            value = [value.get("row"), value.get("col")]
        offsets[str(key)] = parse_crop_offset(value, source=f"{path}: {key}")
    return offsets


def parse_crop_offset(value, *, source: str) -> tuple[int, int]:
    """``"12,30"`` or ``[12, 30]`` -> (12, 30); ``ValueError`` naming ``source`` otherwise."""
    if isinstance(value, str):
        value = value.split(",")
    try:
        row, col = (int(str(v).strip()) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: crop offset must be ROW,COL (two whole numbers), got {value!r}") from None
    if row < 0 or col < 0:
        raise ValueError(f"{source}: crop offset must not be negative, got ({row}, {col})")
    return row, col
