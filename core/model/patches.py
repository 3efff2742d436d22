"""Training patches: every labelled pixel's p x p neighbourhood, extracted once, vectorised.

A pixel is a training sample when its label is a class id (> 0) and the cube marks
it valid. Its patch is the ``p x p`` window centred on it in the cube padded by
``p // 2`` pixels with numpy/torch ``"reflect"`` padding (the edge pixel is not
repeated) — the same padding dense inference uses, so a border pixel is seen in
training exactly as it is classified. This module never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.classes import CLASS_IDS
from core.defaults import PATCH_SIZE

PADDING = "reflect"


@dataclass(frozen=True)
class PatchSet:
    """Patches of one or more captures, ready for training."""

    patches: np.ndarray  # float32 (N, B, p, p), C-contiguous
    targets: np.ndarray  # int64 (N,) class index 0..C-1 (position in class_ids)
    capture_index: np.ndarray  # int64 (N,) index into capture_ids
    class_ids: tuple[int, ...]
    capture_ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def class_counts(self) -> np.ndarray:
        """Samples per class ``(C,)`` int64."""
        return np.bincount(self.targets, minlength=len(self.class_ids))

    def subset(self, index: np.ndarray) -> "PatchSet":
        """The samples at ``index`` (copied, contiguous)."""
        return PatchSet(
            np.ascontiguousarray(self.patches[index]),
            self.targets[index],
            self.capture_index[index],
            self.class_ids,
            self.capture_ids,
        )


def _check_patch_size(patch_size: int) -> int:
    if not isinstance(patch_size, (int, np.integer)) or patch_size < 3 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be an odd integer >= 3, got {patch_size!r}")
    return int(patch_size)


def extract_patches(
    cube_data: np.ndarray,
    labels: np.ndarray,
    patch_size: int = PATCH_SIZE,
    *,
    valid: np.ndarray | None = None,
    class_ids: tuple[int, ...] = CLASS_IDS,
    name: str = "capture",
) -> tuple[np.ndarray, np.ndarray]:
    """Patches ``float32 (N, B, p, p)`` and class indices ``int64 (N,)`` of labelled valid pixels.

    ``cube_data``: float32 ``(H, W, B)`` or a :class:`core.spectral.chain.Cube` (its mask is
    used unless ``valid`` is given); ``labels``: integer ``(H, W)``, 0 = unlabelled;
    ``valid``: bool ``(H, W)`` or None (all valid). Samples are in row-major pixel order.
    Raises ValueError when shapes disagree or a label is not 0 or one of ``class_ids``.
    """
    p = _check_patch_size(patch_size)
    if hasattr(cube_data, "valid") and hasattr(cube_data, "data"):  # a core.spectral.chain.Cube
        valid = cube_data.valid if valid is None else valid
        cube_data = cube_data.data
    if cube_data.ndim != 3:
        raise ValueError(f"{name}: cube must be (H, W, B), got shape {cube_data.shape}")
    h, w, b = cube_data.shape
    if labels.shape != (h, w):
        raise ValueError(f"{name}: labels {labels.shape} do not match the cube's {h}x{w} pixels")
    if valid is not None and valid.shape != (h, w):
        raise ValueError(f"{name}: validity mask {valid.shape} does not match the cube's {h}x{w} pixels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    r = p // 2
    if h <= r or w <= r:
        raise ValueError(f"{name}: cube {h}x{w} is too small for reflect padding of {p}x{p} patches")
    lookup = np.full(256 if labels.dtype == np.uint8 else int(labels.max(initial=0)) + 1, -1, dtype=np.int64)
    lookup[0] = -2  # unlabelled
    for index, class_id in enumerate(class_ids):
        if class_id < lookup.shape[0]:
            lookup[class_id] = index
    if labels.min(initial=0) < 0:
        raise ValueError(f"{name}: labels must be >= 0")
    target_map = lookup[labels]
    unknown = target_map == -1
    if unknown.any():
        bad = sorted(set(np.unique(labels[unknown]).tolist()))
        raise ValueError(f"{name}: label values {bad} are not class ids {list(class_ids)}")
    selected = target_map >= 0
    if valid is not None:
        selected &= valid
    rows, cols = np.nonzero(selected)
    padded = np.pad(np.asarray(cube_data, dtype=np.float32), ((r, r), (r, r), (0, 0)), mode=PADDING)
    # (H, W, B, p, p) strided view; fancy indexing copies only the selected windows.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (p, p), axis=(0, 1))
    patches = np.ascontiguousarray(windows[rows, cols])  # (N, B, p, p)
    return patches, target_map[rows, cols]


def build_patch_set(
    items: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
    patch_size: int = PATCH_SIZE,
    *,
    class_ids: tuple[int, ...] = CLASS_IDS,
) -> PatchSet:
    """One :class:`PatchSet` from ``(capture_id, cube_data (H, W, B), labels (H, W), valid or None)`` items."""
    if not items:
        raise ValueError("no captures to extract patches from")
    parts, targets, owners = [], [], []
    bands = None
    for index, (capture_id, data, labels, valid) in enumerate(items):
        if bands is not None and data.shape[-1] != bands:
            raise ValueError(f"{capture_id}: {data.shape[-1]} bands, other captures have {bands}")
        bands = data.shape[-1]
        patches, target = extract_patches(data, labels, patch_size, valid=valid, class_ids=class_ids, name=capture_id)
        parts.append(patches)
        targets.append(target)
        owners.append(np.full(target.shape, index, dtype=np.int64))
    return PatchSet(
        np.concatenate(parts) if len(parts) > 1 else parts[0],
        np.concatenate(targets),
        np.concatenate(owners),
        tuple(class_ids),
        tuple(item[0] for item in items),
    )
