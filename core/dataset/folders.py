"""Dataset folders: what training reads and what is uploaded. Three kinds of capture.

Layout of ``DATASET/<capture_id>/`` by kind (``meta.json`` says ``"kind"``; folders
written before kinds existed are raw)::

    raw       raw.tif, dark.tif, white.tif   Ximea frames (metadata in ImageDescription)
              labels.png, meta.json          uint8 class ids of the cube's size; capture_id, patient, ...
    cube      cube.npz                       preprocessed cube: cube float32 (H, W, B), valid (H, W),
                                             wavelengths_nm (B,) (NEMESIS preProcessedImage, neurohsi preprocess)
              labels.png, meta.json
    spectra   spectra.npz                    labelled spectra only: data float32 (N, B), label4Classes uint8 (N,),
                                             label uint16 (N,) codes, and when recovered from the ground-truth
                                             map: rows, cols int64 (N,) and map_shape (2,)
              meta.json

A raw capture imported from NEMESIS may also hold ``spectra.npz`` (kept, unused: the
cube is made from the frames). Every non-hidden sub-folder of a dataset is a capture;
files beside them are ignored. NEMESIS import: :mod:`core.dataset.nemesis_import`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.capture.camera_profiles import CameraProfile, resolve_profile
from core.clock import utc_now_iso
from core.errors import CaptureError, DatasetError
from core.labels.maps import write_label_png
from core.fileio import atomic_write, atomic_write_text, load_json_file
from core.labels.maps import label_counts, label_png_shape, read_label_png
from core.capture.metadata import CaptureMetadata

CAPTURE_FILES = ("raw.tif", "dark.tif", "white.tif", "labels.png", "meta.json")
# Files of each kind of capture folder (see the module docstring).
KIND_FILES = {"raw": CAPTURE_FILES, "cube": ("cube.npz", "labels.png", "meta.json"), "spectra": ("spectra.npz", "meta.json")}
CAPTURE_KINDS = tuple(KIND_FILES)
_CAPTURE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetCapture:
    """One capture folder of a dataset."""

    capture_id: str
    folder: Path
    raw_path: Path
    dark_path: Path
    white_path: Path
    labels_path: Path
    meta: dict
    kind: str = "raw"  # "raw" (frames), "cube" (preprocessed cube) or "spectra" (labelled spectra only)

    @property
    def has_image(self) -> bool:
        """Whether every pixel's neighbourhood exists (raw or cube), as patch models need."""
        return self.kind in ("raw", "cube")

    @property
    def patient(self) -> str:
        """Patient id from meta.json, else the ``IDxxxx`` part of the capture id (for leave-one-patient-out)."""
        patient = self.meta.get("patient")
        if patient:
            return str(patient)
        match = re.match(r"^(ID\d+)C\d+$", self.capture_id, re.IGNORECASE)
        return match[1] if match else self.capture_id

    def load_capture(self):
        """The raw/dark/white triplet as a :class:`core.capture.files.Capture` (id = folder name)."""
        from core.capture.files import load_capture

        return load_capture(self.raw_path, self.dark_path, self.white_path)

    def load_labels(self) -> np.ndarray:
        """The label map, uint8 (H, W) class ids."""
        return read_label_png(self.labels_path)

    def metadata(self) -> CaptureMetadata | None:
        """The raw frame's Ximea metadata, read from the TIFF header only (None for cube and spectra captures)."""
        return _read_tiff_header(self.raw_path)[1] if self.kind == "raw" else None

    def load_cube(self):
        """The :class:`core.dataset.nemesis_files.PreprocessedCube` of a cube capture."""
        from core.dataset.nemesis_files import read_preprocessed_cube

        if self.kind != "cube":
            raise DatasetError(self.folder, f"is a {self.kind} capture, not a preprocessed cube")
        return read_preprocessed_cube(self.folder / "cube.npz")

    def load_spectra(self) -> "LabelledSpectra":
        """The labelled spectra of a spectra capture (:class:`LabelledSpectra`)."""
        if self.kind != "spectra":
            raise DatasetError(self.folder, f"is a {self.kind} capture, not labelled spectra")
        return read_spectra_file(self.folder / "spectra.npz")

    def profile(self) -> CameraProfile:
        """The camera profile this capture is preprocessed with (from its metadata; see ``core.capture.synthetic.captures``)."""

        return resolve_profile(self.metadata())


def _read_tiff_header(path: Path) -> tuple[tuple[int, ...], CaptureMetadata | None]:
    """(shape, metadata) of a frame without reading its pixels; ``DatasetError`` when unreadable."""
    from core.capture.files import read_frame_header

    try:
        shape, _, metadata = read_frame_header(path)
    except CaptureError as exc:
        raise DatasetError(path, exc.problem) from None
    return shape, metadata


def _cube_hw(raw_path: Path, header=None) -> tuple[int, int]:
    """(H, W) of the cube of the raw frame at ``raw_path``; ``header`` is its ``_read_tiff_header`` if read already."""
    from core.spectral.chain import filter_window

    shape, metadata = header if header is not None else _read_tiff_header(raw_path)
    profile = resolve_profile(metadata)
    offset = None if metadata is None else metadata.absolute_offset_xy  # a region-of-interest frame
    try:
        window = filter_window(tuple(shape), profile, frame_offset_xy=offset)
    except (CaptureError, ValueError) as exc:
        raise DatasetError(raw_path, getattr(exc, "problem", str(exc))) from None
    return window.h, window.w


def _cube_bands(raw_path: Path) -> int:
    """Band count of the cube of the raw frame at ``raw_path`` (its camera profile's pattern)."""
    _, metadata = _read_tiff_header(raw_path)
    pw, ph = resolve_profile(metadata).pattern_wh
    return int(pw * ph)


def _check_capture_id(capture_id: str) -> str:
    if not isinstance(capture_id, str) or not _CAPTURE_ID.match(capture_id):
        raise ValueError(f"capture id {capture_id!r} must be letters, digits, '_', '-' or '.' (a folder name)")
    return capture_id


def write_capture_folder(
    root: str | Path,
    capture_id: str,
    raw: np.ndarray,
    dark: np.ndarray,
    white: np.ndarray,
    labels: np.ndarray,
    *,
    metadata: CaptureMetadata | None = None,
    meta: dict | None = None,
) -> DatasetCapture:
    """Write ``root/<capture_id>/{raw,dark,white}.tif, labels.png, meta.json`` and return it.

    ``labels`` is uint8 (H, W) of the cube size of the capture's profile
    (resolved from ``metadata``). ``meta`` adds or overrides meta.json fields
    (e.g. ``patient``, ``source``). Existing files of the same capture are replaced.
    Raises ``DatasetError`` when the labels do not fit the frames.
    """
    from core.capture.files import write_frame
    from core.labels.maps import validate_labels

    _check_capture_id(capture_id)
    frames = {"raw": np.asarray(raw), "dark": np.asarray(dark), "white": np.asarray(white)}
    for name, frame in frames.items():
        if frame.ndim != 2 or frame.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"{name} frame must be 2-D uint8 or uint16, got {frame.dtype} {frame.shape}")
        if frame.shape != frames["raw"].shape:
            raise ValueError(f"{name} frame shape {frame.shape} differs from raw {frames['raw'].shape}")
    labels = validate_labels(labels)
    profile = resolve_profile(metadata)
    rows, cols = profile.min_frame_shape
    folder = Path(root) / capture_id
    if frames["raw"].shape[0] < rows or frames["raw"].shape[1] < cols:
        raise DatasetError(folder, f"frames {frames['raw'].shape} are too small for profile {profile.id!r}")
    if labels.shape != profile.cube_shape[:2]:
        raise DatasetError(
            folder, f"label map shape {labels.shape} does not match the cube {profile.cube_shape[:2]} of {profile.id!r}"
        )

    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        write_frame(folder / f"{name}.tif", frame, metadata)
    write_label_png(folder / "labels.png", labels)
    info = {
        "capture_id": capture_id,
        "kind": "raw",
        "patient": None,
        "source": "unknown",
        "profile": profile.id,
        "frame_shape": list(frames["raw"].shape),
        "cube_shape": list(profile.cube_shape),
        "label_counts": {str(k): v for k, v in label_counts(labels).items()},
        "created": utc_now_iso(),
        "metadata": None if metadata is None else metadata.to_dict(),
    }
    info.update(meta or {})
    atomic_write_text(folder / "meta.json", json.dumps(info, indent=1) + "\n")
    return _capture_from_folder(folder, info)


def _capture_from_folder(folder: Path, meta: dict, kind: str = "raw") -> DatasetCapture:
    return DatasetCapture(
        capture_id=folder.name,
        folder=folder,
        raw_path=folder / "raw.tif",
        dark_path=folder / "dark.tif",
        white_path=folder / "white.tif",
        labels_path=folder / "labels.png",
        meta=meta,
        kind=kind,
    )


def _folder_kind(folder: Path) -> str:
    """The kind of capture a folder holds, by its files (raw frames win over a cube, a cube over spectra)."""
    for kind in ("raw", "cube", "spectra"):
        if (folder / KIND_FILES[kind][0]).is_file():
            return kind
    return "raw"  # nothing recognised: report the files a raw capture lacks, as before kinds existed


def read_capture_folder(folder: str | Path) -> DatasetCapture:
    """One capture folder, checked: its kind's files present, meta.json valid, labels of the cube's size."""
    folder = Path(folder)
    kind = _folder_kind(folder)
    missing = [name for name in KIND_FILES[kind] if not (folder / name).is_file()]
    if missing:
        hint = "" if kind != "raw" or (folder / "raw.tif").is_file() else " (or cube.npz + labels.png, or spectra.npz)"
        raise DatasetError(folder, f"capture folder lacks {', '.join(missing)}{hint}")
    meta = load_json_file(folder / "meta.json", DatasetError)
    if not isinstance(meta, dict):
        raise DatasetError(folder / "meta.json", "must hold a JSON object")
    capture = _capture_from_folder(folder, meta, kind)
    if kind != "raw":
        return _check_other_kind(capture)
    raw_header = _read_tiff_header(capture.raw_path)
    raw_shape = raw_header[0]
    for reference in (capture.dark_path, capture.white_path):
        shape = _read_tiff_header(reference)[0]
        if shape != raw_shape:
            raise DatasetError(reference, f"reference shape {shape} differs from raw.tif {raw_shape}")
    expected = _cube_hw(capture.raw_path, raw_header)
    found = label_png_shape(capture.labels_path)
    if found != expected:
        raise DatasetError(capture.labels_path, f"label map is {found[0]}x{found[1]}, the cube is {expected[0]}x{expected[1]}")
    return capture


def read_dataset(root: str | Path) -> list[DatasetCapture]:
    """All captures of a dataset folder, sorted by capture id.

    Raises ``DatasetError`` naming the path when the folder is missing, holds no
    capture, or a capture lacks a file or has labels of the wrong size.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(root, "dataset folder not found")
    if not root.is_dir():
        raise DatasetError(root, "is not a folder (expected DATASET/<capture_id>/raw.tif, ...)")
    if (root / "raw.tif").is_file() and (root / "meta.json").is_file():
        raise DatasetError(root, "is a capture folder, not a dataset; give the folder above it")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if not folders:
        raise DatasetError(root, "dataset is empty (no capture folders)")
    return [read_capture_folder(folder) for folder in folders]


# --------------------------------------------------------------------------- cube and spectra captures


@dataclass(frozen=True)
class LabelledSpectra:
    """The labelled spectra of a spectra capture, with their map positions when known."""

    data: np.ndarray  # float32 (N, B) RMS-normalised spectra
    class_ids: np.ndarray  # uint8 (N,) class ids 1..5 (label4Classes)
    codes: np.ndarray  # uint16 (N,) raw NEMESIS codes
    rows: np.ndarray | None  # int64 (N,) row in the ground-truth map, None when not recovered
    cols: np.ndarray | None  # int64 (N,)
    map_shape: tuple[int, int] | None  # (H, W) of the ground-truth map

    @property
    def has_positions(self) -> bool:
        return self.rows is not None


def write_spectra_file(path: Path, spectra: LabelledSpectra) -> None:
    """``spectra.npz`` of a spectra capture (atomic)."""
    arrays = {"data": np.asarray(spectra.data, np.float32), "label4Classes": np.asarray(spectra.class_ids, np.uint8),
              "label": np.asarray(spectra.codes, np.uint16)}
    if spectra.has_positions:
        arrays.update(rows=np.asarray(spectra.rows, np.int64), cols=np.asarray(spectra.cols, np.int64),
                      map_shape=np.asarray(spectra.map_shape, np.int64))
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def read_spectra_file(path: Path) -> LabelledSpectra:
    """Read and check a ``spectra.npz`` (see :func:`write_spectra_file`); ``DatasetError`` naming it."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise DatasetError(path, f"not a readable spectra file ({exc.__class__.__name__})") from None
    for key in ("data", "label4Classes"):
        if key not in arrays:
            raise DatasetError(path, f"no {key!r} array")
    data, ids = arrays["data"], arrays["label4Classes"].ravel()
    if data.ndim != 2 or data.dtype.kind != "f" or len(ids) != len(data):
        raise DatasetError(path, f"'data' must be N x bands floats with N class ids, got {data.shape} and {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() > 5):
        raise DatasetError(path, "'label4Classes' holds values other than the class ids 0..5")
    rows = cols = shape = None
    if "rows" in arrays:
        rows, cols, shape = arrays["rows"].astype(np.int64), arrays["cols"].astype(np.int64), arrays["map_shape"]
        shape = (int(shape[0]), int(shape[1]))
        if rows.shape != ids.shape or cols.shape != ids.shape or (rows.size and (
                rows.min() < 0 or cols.min() < 0 or rows.max() >= shape[0] or cols.max() >= shape[1])):
            raise DatasetError(path, "pixel positions do not fit the ground-truth map")
    codes = arrays.get("label", np.zeros(len(ids), np.uint16)).ravel().astype(np.uint16)
    return LabelledSpectra(data.astype(np.float32, copy=False), ids.astype(np.uint8), codes, rows, cols, shape)


def _check_other_kind(capture: DatasetCapture) -> DatasetCapture:
    """Checks of a cube capture (labels of the cube's size) and a spectra capture (readable)."""
    if capture.kind == "spectra":
        read_spectra_file(capture.folder / "spectra.npz")
        return capture
    cube = capture.load_cube()
    found = label_png_shape(capture.labels_path)
    if found != cube.valid.shape:
        raise DatasetError(capture.labels_path, f"label map is {found[0]}x{found[1]}, the cube is "
                                                f"{cube.valid.shape[0]}x{cube.valid.shape[1]}")
    return capture


def _write_meta(folder: Path, capture_id: str, kind: str, labels_count: dict, meta: dict | None) -> dict:
    info = {"capture_id": capture_id, "kind": kind, "patient": None, "source": "unknown",
            "label_counts": {str(k): int(v) for k, v in labels_count.items()}, "created": utc_now_iso()}
    info.update(meta or {})
    atomic_write_text(folder / "meta.json", json.dumps(info, indent=1) + "\n")
    return info


def write_cube_capture(root: str | Path, capture_id: str, cube, labels: np.ndarray, *, meta: dict | None = None
                       ) -> DatasetCapture:
    """Write ``root/<capture_id>/{cube.npz, labels.png, meta.json}``.

    ``cube``: a :class:`core.dataset.nemesis_files.PreprocessedCube` (or anything with
    ``data`` (H, W, B), ``valid``, ``wavelengths_nm``, ``profile_id``); ``labels`` uint8 (H, W).
    """
    from core.labels.maps import validate_labels

    _check_capture_id(capture_id)
    labels = validate_labels(labels)
    folder = Path(root) / capture_id
    if labels.shape != cube.data.shape[:2]:
        raise DatasetError(folder, f"label map {labels.shape} does not match the cube {cube.data.shape[:2]}")
    folder.mkdir(parents=True, exist_ok=True)
    wavelengths = np.asarray([] if cube.wavelengths_nm is None else cube.wavelengths_nm, np.float32)
    description = np.asarray(json.dumps({"profile": cube.profile_id}))
    arrays = {"cube": np.asarray(cube.data, np.float32), "valid": np.asarray(cube.valid, bool),
              "wavelengths_nm": wavelengths, "description": description}
    atomic_write(folder / "cube.npz", lambda fh: np.savez_compressed(fh, **arrays))
    write_label_png(folder / "labels.png", labels)
    info = _write_meta(folder, capture_id, "cube", label_counts(labels),
                       {"profile": cube.profile_id, "cube_shape": list(cube.data.shape), **(meta or {})})
    return _capture_from_folder(folder, info, "cube")


def write_spectra_capture(root: str | Path, capture_id: str, spectra: LabelledSpectra, *, meta: dict | None = None
                          ) -> DatasetCapture:
    """Write ``root/<capture_id>/{spectra.npz, meta.json}``."""
    _check_capture_id(capture_id)
    folder = Path(root) / capture_id
    folder.mkdir(parents=True, exist_ok=True)
    write_spectra_file(folder / "spectra.npz", spectra)
    ids, counts = np.unique(spectra.class_ids, return_counts=True)
    info = _write_meta(folder, capture_id, "spectra", dict(zip(ids.tolist(), counts.tolist())),
                       {"n_spectra": int(len(spectra.data)), "positions": spectra.has_positions, **(meta or {})})
    return _capture_from_folder(folder, info, "spectra")
