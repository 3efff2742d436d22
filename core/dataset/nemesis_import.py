"""``import-nemesis``: a folder holding any mix of NEMESIS forms -> a dataset folder.

Files are grouped by capture id (``IDxxxxCyy``); per capture the richest form wins:

=========================================================  ==========  ====================================
found                                                      kind        used for
=========================================================  ==========  ====================================
``IDxxxxCyy.tif`` + ``CDyy``/``CWyy`` + ``SNAPgt...mat``    raw         the chain makes the cube; all models
``SNAPimages<ID>_cropped_Pre-processed.mat`` (or            cube        all models (patches and spectra)
``<ID>.npz`` / ``<ID>_cube.npz`` from ``neurohsi
preprocess``) + ``SNAPgt...mat``
``<ID>_dataset.mat`` (+ ``SNAPgt...mat``: positions)        spectra     the spectral model; Conv2DNet only
                                                                        where positions were recovered
``SNAPgt...mat`` alone                                     skipped     nothing to learn from
=========================================================  ==========  ====================================

Everything but raw frames' pixels is read and checked before the first folder is
written; the summary says per capture what was found, what it is used for and which
wavelengths were assumed for files that carry none (``.mat`` cubes and spectra: the
thesis camera's output bands, :data:`core.dataset.nemesis_files.ASSUMED_PROFILE`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.dataset.folders import (
    LabelledSpectra,
    _cube_hw,
    write_capture_folder,
    write_cube_capture,
    write_spectra_capture,
)
from core.dataset.nemesis_files import (
    ASSUMED_BANDS,
    ASSUMED_PROFILE,
    assumed_wavelengths,
    read_ground_truth_codes,
    read_nemesis_ground_truth,
    read_nemesis_spectra,
    read_preprocessed_cube,
    recover_positions,
)
from core.errors import CaptureError, DatasetError
from core.labels.nemesis import place_cropped_ground_truth

_CAP = r"(?P<cap>(?P<id>ID\d+)C(?P<n>\d+))"
# (form, pattern) in the order files are matched; the raw pattern excludes the CD/CW references.
_FORMS = (
    ("raw", re.compile(rf"^{_CAP}\.tiff?$", re.IGNORECASE)),
    ("gt", re.compile(rf"^SNAPgt{_CAP}_cropped_Pre-processed\.mat$", re.IGNORECASE)),
    ("gt", re.compile(r"^SNAPgt(?P<cap>(?P<id>ID\d+))_cropped_Pre-processed\.mat$", re.IGNORECASE)),  # per patient
    ("cube", re.compile(rf"^SNAPimages{_CAP}_cropped_Pre-processed\.mat$", re.IGNORECASE)),
    ("cube", re.compile(rf"^{_CAP}(_cube)?\.npz$", re.IGNORECASE)),
    ("spectra", re.compile(rf"^{_CAP}_dataset\.mat$", re.IGNORECASE)),
)
USE = {
    "raw": "raw triplet + ground truth: the chain makes the cube; trains and tests every model kind; classify and view",
    "cube": "preprocessed cube + ground truth: trains and tests every model kind; classify and view (no references)",
    "spectra+positions": "labelled spectra, positions recovered from the ground-truth map: trains and tests the "
                         "spectral model; Conv2DNet gets patches of the labelled neighbours only",
    "spectra": "labelled spectra without positions: trains and tests the spectral model only (no patches)",
}


@dataclass
class _Plan:
    capture_id: str
    patient: str
    files: dict[str, Path] = field(default_factory=dict)
    kind: str = ""
    labels: np.ndarray | None = None
    cube: object = None
    spectra: LabelledSpectra | None = None
    offset_rc: tuple[int, int] | None = None
    references: tuple[Path, Path] | None = None
    notes: list[str] = field(default_factory=list)


def _group_files(src: Path) -> tuple[dict[str, _Plan], dict[str, Path]]:
    """Capture id -> its files; patient id -> a patient-wide ground truth (older archives)."""
    plans: dict[str, _Plan] = {}
    patient_gt: dict[str, Path] = {}
    for path in sorted(p for p in src.iterdir() if p.is_file()):
        for form, pattern in _FORMS:
            match = pattern.match(path.name)
            if match is None:
                continue
            if match["cap"] == match["id"]:
                patient_gt[match["id"]] = path
            else:
                plan = plans.setdefault(match["cap"], _Plan(match["cap"], match["id"]))
                plan.files.setdefault(form, path)
            break
    return plans, patient_gt


def _gt_labels(plan: _Plan, hw: tuple[int, int], crop_offsets: dict, name: str) -> np.ndarray:
    plan.offset_rc = crop_offsets.get(plan.capture_id, crop_offsets.get(plan.patient))
    gt = plan.files["gt"]
    return place_cropped_ground_truth(read_nemesis_ground_truth(gt), hw, plan.offset_rc, gt_path=gt, raw_name=name)


def _plan_one(plan: _Plan, crop_offsets: dict) -> str | None:
    """Decide and check one capture's kind; the reason it is skipped, or None."""
    from core.capture.files import find_references

    files = plan.files
    if "raw" in files:
        if "gt" not in files:
            return f"raw frames but no SNAPgt{plan.capture_id}_cropped_Pre-processed.mat"
        try:
            plan.references = find_references(files["raw"])
        except CaptureError as exc:
            raise DatasetError(exc.path, exc.problem) from None
        plan.kind = "raw"
        plan.labels = _gt_labels(plan, _cube_hw(files["raw"]), crop_offsets, files["raw"].name)
        for other in ("cube", "spectra"):
            if other in files:
                plan.notes.append(f"{files[other].name} not used: the cube is made from the raw frames")
        return None
    if "cube" in files:
        if "gt" not in files:
            return f"preprocessed cube but no SNAPgt{plan.capture_id}_cropped_Pre-processed.mat (labels)"
        plan.kind, plan.cube = "cube", read_preprocessed_cube(files["cube"])
        plan.labels = _gt_labels(plan, plan.cube.data.shape[:2], crop_offsets, files["cube"].name)
        if "spectra" in files:
            plan.notes.append(f"{files['spectra'].name} not used: the cube holds every pixel's spectrum")
        return None
    if "spectra" in files:
        nemesis = read_nemesis_spectra(files["spectra"], n_bands=ASSUMED_BANDS)
        rows = cols = shape = None
        if "gt" in files:
            codes = read_ground_truth_codes(files["gt"])
            rows, cols = recover_positions(codes, nemesis, gt_path=files["gt"])
            shape = codes.shape
        plan.kind = "spectra+positions" if rows is not None else "spectra"
        plan.spectra = LabelledSpectra(nemesis.data.astype(np.float32), nemesis.label4classes, nemesis.label,
                                       rows, cols, shape)
        return None
    return "ground truth only: no raw frames, preprocessed cube or _dataset.mat spectra to learn from"


def _assumed(plan: _Plan) -> bool:
    """Whether this capture's wavelengths are assumed (the file carries none)."""
    if plan.kind.startswith("spectra"):
        return True
    return plan.kind == "cube" and bool(plan.cube.wavelengths_assumed)


def plan_nemesis(src: str | Path, crop_offsets: dict | None = None) -> tuple[list[_Plan], list[dict]]:
    """Every capture of ``src`` planned and checked (nothing written): ``(plans, skipped)``."""
    src = Path(src)
    if not src.is_dir():
        raise DatasetError(src, "NEMESIS folder not found" if not src.exists() else "is not a folder")
    plans, patient_gt = _group_files(src)
    if not plans:
        raise DatasetError(src, "no NEMESIS files (IDxxxxCyy.tif triplets, SNAPimages<ID>_cropped_Pre-processed.mat "
                                "cubes, <ID>_dataset.mat spectra, with SNAPgt<ID>_cropped_Pre-processed.mat labels)")
    ready, skipped = [], []
    for plan in plans.values():
        if "gt" not in plan.files and plan.patient in patient_gt:
            plan.files["gt"] = patient_gt[plan.patient]
        reason = _plan_one(plan, dict(crop_offsets or {}))
        if reason is None:
            ready.append(plan)
        else:
            skipped.append({"capture_id": plan.capture_id, "found": {k: p.name for k, p in plan.files.items()},
                            "reason": reason})
    if not ready:
        raise DatasetError(src, f"no capture can be imported ({len(skipped)} skipped: {skipped[0]['reason']})")
    return ready, skipped


def _write(plan: _Plan, dst: Path, meta: dict) -> int:
    """Write one planned capture; the number of labelled pixels (or spectra)."""
    from core.capture.files import load_capture

    if plan.kind == "raw":
        try:
            capture = load_capture(plan.files["raw"], *plan.references)
        except CaptureError as exc:
            raise DatasetError(exc.path, exc.problem) from None
        written = write_capture_folder(dst, plan.capture_id, capture.raw, capture.dark, capture.white, plan.labels,
                                       metadata=capture.metadata, meta=meta)
        stale = written.folder / "spectra.npz"
        if stale.exists():  # an earlier import kept it; nothing reads it beside raw frames
            stale.unlink()
        return int((plan.labels > 0).sum())
    if plan.kind == "cube":
        write_cube_capture(dst, plan.capture_id, plan.cube, plan.labels, meta=meta)
        return int((plan.labels > 0).sum())
    write_spectra_capture(dst, plan.capture_id, plan.spectra, meta={**meta, "profile": ASSUMED_PROFILE})
    return int(len(plan.spectra.data))


def import_nemesis(src_folder: str | Path, dst_dataset: str | Path, *, progress=None,
                   crop_offsets: dict[str, tuple[int, int]] | None = None) -> dict:
    """Import a NEMESIS folder (any mix of forms, see the module docstring) into a dataset folder.

    ``progress(message)`` gets one line per capture saying what was found and what it
    is used for. ``crop_offsets`` maps a capture (or patient) id to the (row, col) of
    its cropped ground truth's top-left corner in the cube (raw and cube captures).
    Returns ``{"dataset", "imported": [{capture_id, kind, found, used_for, labelled_pixels,
    wavelengths}], "skipped": [...], "assumed_wavelengths_nm"}``; ``DatasetError`` naming
    the file on bad input, raised before anything is written (raw pixels aside).
    """
    dst = Path(dst_dataset)
    plans, skipped = plan_nemesis(src_folder, crop_offsets)
    assumed_nm, _ = assumed_wavelengths(25)
    assumed_text = (f"assumed: the {ASSUMED_PROFILE} camera's output bands "
                    f"({assumed_nm.min():.0f}-{assumed_nm.max():.0f} nm), the file carries none")
    imported = []
    for index, plan in enumerate(plans, start=1):
        found = {k: p.name for k, p in plan.files.items()}
        wavelengths = assumed_text if _assumed(plan) else "from the file"
        if progress is not None:
            progress(f"[{index}/{len(plans)}] {plan.capture_id}: found {', '.join(found.values())} -> "
                     f"{plan.kind.split('+')[0]} capture ({USE[plan.kind]}); wavelengths {wavelengths}"
                     + "".join(f"; {n}" for n in plan.notes))
        meta = {"patient": plan.patient, "source": "nemesis", "nemesis_files": found}
        if plan.offset_rc is not None:
            meta["ground_truth_offset_rc"] = list(plan.offset_rc)
        if _assumed(plan):
            meta["wavelengths_assumed"] = True
        n = _write(plan, dst, meta)
        imported.append({"capture_id": plan.capture_id, "kind": plan.kind.split("+")[0], "found": found,
                         "used_for": USE[plan.kind], "labelled_pixels": n, "wavelengths": wavelengths,
                         "notes": plan.notes})
    for item in skipped:
        if progress is not None:
            progress(f"{item['capture_id']}: skipped ({item['reason']})")
    return {"dataset": str(dst), "imported": imported, "skipped": skipped,
            "assumed_wavelengths_nm": [round(float(w), 2) for w in assumed_nm]}
