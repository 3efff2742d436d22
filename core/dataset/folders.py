"""Dataset folders (what training reads and what is uploaded), and NEMESIS import.

Layout::

    DATASET/<capture_id>/raw.tif     raw frame, Ximea metadata in ImageDescription
                         dark.tif    dark reference
                         white.tif   white reference
                         labels.png  uint8 class ids (palette PNG) of the cube's size
                         meta.json   capture_id, patient, source, profile, label_counts, created, ...

A NEMESIS import may add ``spectra.npz`` (the archive's labelled spectra).
Every non-hidden sub-folder of a dataset is a capture; files beside them are ignored.
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
from core.fileio import atomic_write, atomic_write_text
from core.labels.maps import label_counts, label_png_shape, map_nemesis_codes, read_label_png
from core.capture.metadata import CaptureMetadata
from core.labels.nemesis import kind_name, place_cropped_ground_truth

CAPTURE_FILES = ("raw.tif", "dark.tif", "white.tif", "labels.png", "meta.json")
_CAPTURE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NEMESIS_RAW = re.compile(r"^(?P<id>ID\d+)C(?P<n>\d+)\.tiff?$", re.IGNORECASE)


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
        """The raw frame's Ximea metadata, read from the TIFF header only."""
        return _read_tiff_header(self.raw_path)[1]

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


def _capture_from_folder(folder: Path, meta: dict) -> DatasetCapture:
    return DatasetCapture(
        capture_id=folder.name,
        folder=folder,
        raw_path=folder / "raw.tif",
        dark_path=folder / "dark.tif",
        white_path=folder / "white.tif",
        labels_path=folder / "labels.png",
        meta=meta,
    )


def read_capture_folder(folder: str | Path) -> DatasetCapture:
    """One capture folder, checked: all five files present, meta.json valid, labels of the cube's size."""
    folder = Path(folder)
    missing = [name for name in CAPTURE_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(folder, f"capture folder lacks {', '.join(missing)}")
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(folder / "meta.json", f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DatasetError(folder / "meta.json", "must hold a JSON object")
    capture = _capture_from_folder(folder, meta)
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


# --------------------------------------------------------------------------- NEMESIS archive


@dataclass(frozen=True)
class NemesisSpectra:
    """The labelled spectra of one NEMESIS capture (``<ID>_dataset.mat``)."""

    data: np.ndarray  # float64 (N, B) preprocessed spectra
    label: np.ndarray  # uint16 (N,) raw NEMESIS codes
    label4classes: np.ndarray  # uint8 (N,) class ids 1..5


def _loadmat(path: Path) -> dict:
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        return scipy.io.loadmat(path)
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except NotImplementedError:
        raise DatasetError(path, "MATLAB v7.3 (HDF5) .mat files are not supported; re-save it with save(..., '-v7')") from None
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, MatReadError) as exc:
        # scipy reports damaged files with many exception types; all mean "cannot read this file".
        raise DatasetError(path, f"not a readable MATLAB .mat file ({exc.__class__.__name__}: {exc})") from None


def read_nemesis_spectra(path: str | Path) -> NemesisSpectra:
    """Read ``<ID>_dataset.mat`` (keys ``data`` N x B, ``label``, ``label4Classes``)."""
    path = Path(path)
    content = _loadmat(path)
    for key in ("data", "label", "label4Classes"):
        if key not in content:
            raise DatasetError(path, f"no {key!r} variable (found: {', '.join(k for k in content if not k.startswith('__'))})")
    label = np.asarray(content["label"]).ravel()
    label4 = np.asarray(content["label4Classes"]).ravel()
    for key, values in (("data", np.asarray(content["data"])), ("label", label), ("label4Classes", label4)):
        # A MATLAB char array or cell reads as text or objects: say so rather than fail inside numpy.
        if values.dtype.kind not in "iuf":
            raise DatasetError(path, f"{key!r} must hold numbers, got {kind_name(values.dtype)}")
    data = np.asarray(content["data"], dtype=np.float64)
    if data.ndim != 2:
        raise DatasetError(path, f"'data' must be N x bands, got shape {data.shape}")
    if len(label) != len(data) or len(label4) != len(data):
        raise DatasetError(path, f"{len(data)} spectra but {len(label)} labels and {len(label4)} label4Classes")
    if label4.size and (label4.min() < 0 or label4.max() > 5 or not np.all(label4 == np.round(label4))):
        raise DatasetError(path, "'label4Classes' holds values other than the class ids 0..5")
    return NemesisSpectra(data, label.astype(np.uint16), label4.astype(np.uint8))


def read_nemesis_ground_truth(path: str | Path) -> np.ndarray:
    """Read ``SNAPgt<ID>_cropped_Pre-processed.mat`` (``groundTruthMap``) as uint8 class ids (H, W)."""
    path = Path(path)
    content = _loadmat(path)
    if "groundTruthMap" not in content:
        raise DatasetError(path, "no 'groundTruthMap' variable")
    codes = np.asarray(content["groundTruthMap"])
    if codes.ndim != 2:
        raise DatasetError(path, f"'groundTruthMap' must be 2-D, got shape {codes.shape}")
    if codes.dtype.kind not in "iuf":
        # A logical map (true/false) holds no class codes; importing it would label nothing, silently.
        raise DatasetError(path, f"'groundTruthMap' must hold NEMESIS class codes (numbers), got {kind_name(codes.dtype)}")
    try:
        labels = map_nemesis_codes(codes)
    except ValueError as exc:
        raise DatasetError(path, str(exc)) from None
    if codes.size and codes.max() > 0 and not labels.any():
        # MATLAB saves a logical mask as uint8 0/1: it would import as "nothing labelled", silently.
        found = ", ".join(str(int(v)) for v in np.unique(codes)[:8])
        raise DatasetError(
            path, f"'groundTruthMap' labels no pixel with a NEMESIS class code (values found: {found}); a logical mask?"
        )
    return labels


def _find_one(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass(frozen=True)
class _NemesisItem:
    capture_id: str
    patient: str
    raw_path: Path
    dark_path: Path
    white_path: Path
    gt_path: Path
    labels: np.ndarray  # uint8 (H, W) class ids, placed in the cube
    offset_rc: tuple[int, int] | None  # where a cropped ground truth sits in the cube
    spectra_path: Path | None
    spectra: NemesisSpectra | None


def _plan_nemesis(src: Path, crop_offsets: dict[str, tuple[int, int]]) -> tuple[list[_NemesisItem], list[dict]]:
    """Find and check every capture (references, ground truth, spectra, sizes) before anything is written."""
    from core.capture.files import find_references

    raws = sorted(p for p in src.iterdir() if p.is_file() and _NEMESIS_RAW.match(p.name))
    if not raws:
        raise DatasetError(src, "no NEMESIS captures (IDxxxxCyy.tif with IDxxxxCDyy.tif and IDxxxxCWyy.tif)")
    items, skipped = [], []
    for raw_path in raws:
        capture_id, patient = raw_path.stem, _NEMESIS_RAW.match(raw_path.name)["id"]
        gt_path = _find_one(
            src, [f"SNAPgt{capture_id}_cropped_Pre-processed.mat", f"SNAPgt{patient}_cropped_Pre-processed.mat"]
        )
        if gt_path is None:
            skipped.append({"capture_id": capture_id, "reason": f"no SNAPgt{capture_id}_cropped_Pre-processed.mat"})
            continue
        try:
            dark_path, white_path = find_references(raw_path)
        except CaptureError as exc:
            raise DatasetError(exc.path, exc.problem) from None
        offset = crop_offsets.get(capture_id, crop_offsets.get(patient))
        labels = place_cropped_ground_truth(
            read_nemesis_ground_truth(gt_path), _cube_hw(raw_path), offset, gt_path=gt_path, raw_name=raw_path.name
        )
        spectra_path = _find_one(src, [f"{capture_id}_dataset.mat", f"{patient}_dataset.mat"])
        spectra = None if spectra_path is None else read_nemesis_spectra(spectra_path)
        items.append(
            _NemesisItem(capture_id, patient, raw_path, dark_path, white_path, gt_path, labels, offset, spectra_path, spectra)
        )
    if not items:
        raise DatasetError(src, f"no capture has a ground-truth map ({len(skipped)} skipped)")
    return items, skipped


def import_nemesis(
    src_folder: str | Path,
    dst_dataset: str | Path,
    *,
    progress=None,
    crop_offsets: dict[str, tuple[int, int]] | None = None,
) -> dict:
    """Import a NEMESIS archive folder into a dataset folder.

    For each ``IDxxxxCyy.tif`` with its ``CDyy``/``CWyy`` references and a
    ``SNAPgt<capture>_cropped_Pre-processed.mat`` ground truth (``<capture>`` is
    ``IDxxxxCyy`` or ``IDxxxx``), writes ``dst/<IDxxxxCyy>/``; an
    ``<capture>_dataset.mat`` spectra file is kept as ``spectra.npz``. Captures
    without ground truth are skipped and listed. Everything but the frames' pixels
    is checked before the first folder is written. ``progress(message)`` is called
    per capture. ``crop_offsets`` maps a capture id (or patient id) to the (row, col)
    of its cropped ground truth's top-left corner in the cube
    (:func:`place_cropped_ground_truth`). Returns a summary dict; ``DatasetError``
    naming the file on bad input.
    """
    from core.capture.files import load_capture

    src, dst = Path(src_folder), Path(dst_dataset)
    if not src.is_dir():
        raise DatasetError(src, "NEMESIS folder not found" if not src.exists() else "is not a folder")
    items, skipped = _plan_nemesis(src, dict(crop_offsets or {}))
    imported = []
    for index, item in enumerate(items, start=1):
        if progress is not None:
            progress(f"[{index}/{len(items)}] importing {item.capture_id}")
        try:
            capture = load_capture(item.raw_path, item.dark_path, item.white_path)
        except CaptureError as exc:
            raise DatasetError(exc.path, exc.problem) from None
        files = {"raw": item.raw_path.name, "ground_truth": item.gt_path.name}
        meta = {"patient": item.patient, "source": "nemesis", "nemesis_files": files}
        if item.offset_rc is not None:
            meta["ground_truth_offset_rc"] = list(item.offset_rc)
        if item.spectra is not None:
            files["spectra"] = item.spectra_path.name
            meta["nemesis_spectra"] = {
                "n": int(len(item.spectra.data)),
                "bands": int(item.spectra.data.shape[1]),
                "label4classes_counts": {str(c): int((item.spectra.label4classes == c).sum()) for c in range(1, 6)},
            }
        written = write_capture_folder(
            dst, item.capture_id, capture.raw, capture.dark, capture.white, item.labels,
            metadata=capture.metadata, meta=meta,
        )
        spectra_file = written.folder / "spectra.npz"
        if item.spectra is not None:
            spectra = {"data": item.spectra.data, "label": item.spectra.label, "label4Classes": item.spectra.label4classes}
            atomic_write(spectra_file, lambda fh: np.savez_compressed(fh, **spectra))
        elif spectra_file.exists():  # left over from an earlier import of this capture
            spectra_file.unlink()
        imported.append({"capture_id": item.capture_id, "labelled_pixels": int((item.labels > 0).sum())})
    return {"dataset": str(dst), "imported": imported, "skipped": skipped}
