"""Training samples of every kind of capture, for every model kind (no torch here).

A capture gives labelled pixels; a model kind says what it sees of each:

* ``conv2dnet``: the p x p patch around the pixel (:mod:`core.model.patches`). Raw and
  cube captures have every neighbour. A spectra capture (NEMESIS ``_dataset.mat``) has
  spectra only for its labelled pixels: with positions recovered from the ground-truth
  map the patch is built from the labelled neighbours, and a neighbour without a
  spectrum takes the centre pixel's spectrum (so an isolated pixel's patch is its own
  spectrum repeated, never zeros the chain cannot produce). Without positions there is
  no patch at all: refused in one line.
* ``spectral``: the pixel's spectrum alone, as a 1 x 1 "patch" ``(N, B, 1, 1)`` so both
  kinds share :class:`core.model.patches.PatchSet` (subsets, targets, capture index).

Samples are in capture order, then row-major pixel order (spectra captures: their
file's row order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.classes import CLASS_IDS
from core.errors import DatasetError
from core.model.patches import PatchSet, build_patch_set, extract_patches

MODEL_KINDS = ("conv2dnet", "spectral")


@dataclass(frozen=True)
class CaptureData:
    """One capture's labelled data: an image (raw, cube) or labelled spectra."""

    capture_id: str
    profile_id: str
    cube: np.ndarray | None  # float32 (H, W, B); None for a spectra capture
    labels: np.ndarray | None  # uint8 (H, W) class ids; None for a spectra capture
    valid: np.ndarray | None  # bool (H, W)
    wavelengths_nm: np.ndarray | None  # (B,)
    spectra: object = None  # core.dataset.folders.LabelledSpectra of a spectra capture


def load_capture_data(capture) -> CaptureData:
    """The labelled data of a dataset capture (:class:`core.dataset.folders.DatasetCapture`) of any kind."""
    kind = getattr(capture, "kind", "raw")
    if kind == "spectra":
        from core.dataset.nemesis_files import ASSUMED_PROFILE, assumed_wavelengths

        spectra = capture.load_spectra()
        wavelengths, _ = assumed_wavelengths(spectra.data.shape[1])
        profile = str(capture.meta.get("profile") or ASSUMED_PROFILE)
        return CaptureData(capture.capture_id, profile, None, None, None, wavelengths, spectra)
    if kind == "cube":
        cube = capture.load_cube()
        data, valid, profile, wavelengths = cube.data, cube.valid, cube.profile_id, cube.wavelengths_nm
    else:
        from core.spectral.chain import preprocess_capture

        # DatasetCapture knows its profile (the synthetic small profile is not a built-in one)
        profile_of = capture.profile() if callable(getattr(capture, "profile", None)) else None
        cube = preprocess_capture(capture.load_capture(), profile_of)
        data, valid, profile, wavelengths = cube.data, cube.valid, cube.profile_id, cube.wavelengths_nm
    labels = capture.load_labels()
    if labels.shape != valid.shape:
        raise DatasetError(getattr(capture, "labels_path", capture.capture_id),
                           f"labels are {labels.shape[0]}x{labels.shape[1]}, the cube is "
                           f"{valid.shape[0]}x{valid.shape[1]}")
    return CaptureData(capture.capture_id, profile, data, labels, valid, wavelengths)


def _class_index(ids: np.ndarray, class_ids: tuple[int, ...], name: str) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(class_ids)}
    unknown = sorted(set(np.unique(ids).tolist()) - set(lookup) - {0})
    if unknown:
        raise DatasetError(None, f"{name}: class ids {unknown} are not among {list(class_ids)}")
    return np.array([lookup.get(int(i), -1) for i in ids], dtype=np.int64)


def sparse_patches(spectra, patch_size: int, *, name: str) -> np.ndarray:
    """Patches ``float32 (N, B, p, p)`` of a spectra capture's labelled pixels from their recovered positions.

    A neighbour without a spectrum (unlabelled, or outside the map) takes the centre
    pixel's spectrum: see the module docstring for why.
    """
    if not spectra.has_positions:
        raise DatasetError(None, f"{name}: Conv2DNet needs {patch_size}x{patch_size} patches, but this capture holds "
                                 "spectra without their positions in an image; use --model-kind spectral")
    h, w = spectra.map_shape
    b, r = spectra.data.shape[1], patch_size // 2
    cube = np.zeros((h + 2 * r, w + 2 * r, b), np.float32)
    known = np.zeros((h + 2 * r, w + 2 * r), bool)
    cube[spectra.rows + r, spectra.cols + r] = spectra.data
    known[spectra.rows + r, spectra.cols + r] = True
    offsets = np.arange(-r, r + 1)
    rr = spectra.rows[:, None, None] + r + offsets[None, :, None]  # (N, p, 1)
    cc = spectra.cols[:, None, None] + r + offsets[None, None, :]  # (N, 1, p)
    windows = cube[rr, cc]  # (N, p, p, B)
    have = known[rr, cc][..., None]
    windows = np.where(have, windows, spectra.data[:, None, None, :])
    return np.ascontiguousarray(windows.transpose(0, 3, 1, 2), dtype=np.float32)


def _spectra_of(item: CaptureData, class_ids, kind: str, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of one capture for ``kind``."""
    if item.spectra is not None:
        targets = _class_index(item.spectra.class_ids, class_ids, item.capture_id)
        keep = targets >= 0  # label4Classes 0: not one of the classes
        if kind == "spectral":
            inputs = item.spectra.data[:, :, None, None]
        else:
            inputs = sparse_patches(item.spectra, patch_size, name=item.capture_id)
        return np.ascontiguousarray(inputs[keep], dtype=np.float32), targets[keep]
    if kind == "spectral":
        inputs, targets = extract_patches(item.cube, item.labels, 3, valid=item.valid, class_ids=class_ids,
                                          name=item.capture_id)
        return np.ascontiguousarray(inputs[:, :, 1:2, 1:2]), targets  # the centre of each 3x3 window
    return extract_patches(item.cube, item.labels, patch_size, valid=item.valid, class_ids=class_ids,
                           name=item.capture_id)


def samples_from_data(items: list[CaptureData], kind: str = "conv2dnet", patch_size: int = 7, *,
                      class_ids: tuple[int, ...] = CLASS_IDS) -> PatchSet:
    """One :class:`PatchSet` of ``items`` for model ``kind`` (see the module docstring)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}")
    if not items:
        raise DatasetError(None, "no captures to train on")
    if kind == "conv2dnet" and all(i.spectra is None for i in items):
        return build_patch_set([(i.capture_id, i.cube, i.labels, i.valid) for i in items], patch_size,
                               class_ids=class_ids)
    parts, targets, owners, bands = [], [], [], None
    for index, item in enumerate(items):
        inputs, target = _spectra_of(item, class_ids, kind, patch_size)
        if bands is not None and inputs.shape[1] != bands:
            raise DatasetError(None, f"{item.capture_id}: {inputs.shape[1]} bands, other captures have {bands}")
        bands = inputs.shape[1]
        parts.append(inputs)
        targets.append(target)
        owners.append(np.full(target.shape, index, dtype=np.int64))
    return PatchSet(np.concatenate(parts), np.concatenate(targets), np.concatenate(owners), tuple(class_ids),
                    tuple(i.capture_id for i in items))


def check_one_profile(items: list[CaptureData]) -> str:
    """The one camera profile of ``items``; ``DatasetError`` when they differ."""
    profiles = sorted({i.profile_id for i in items})
    if len(profiles) > 1:
        raise DatasetError(None, f"captures use different camera profiles: {profiles}")
    return profiles[0]


def samples_from_captures(captures, kind: str = "conv2dnet", patch_size: int = 7, *,
                          class_ids: tuple[int, ...] = CLASS_IDS) -> tuple[PatchSet, str]:
    """``(PatchSet, profile_id)`` of dataset captures; ``DatasetError`` when nothing is labelled."""
    if not captures:
        raise DatasetError(None, "no captures to train on")
    items = [load_capture_data(c) for c in captures]
    profile = check_one_profile(items)
    data = samples_from_data(items, kind, patch_size, class_ids=class_ids)
    if len(data) == 0:
        folder = getattr(captures[0], "folder", None)
        raise DatasetError(None if folder is None else folder.parent, "no labelled pixels in the training captures")
    return data, profile


def patients_of(captures) -> np.ndarray:
    """Patient index ``int64 (n_captures,)`` of each capture (first-seen order of ``capture.patient``)."""
    names: dict[str, int] = {}
    return np.array([names.setdefault(str(getattr(c, "patient", c.capture_id)), len(names)) for c in captures],
                    dtype=np.int64)
