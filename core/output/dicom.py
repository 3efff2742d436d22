"""DICOM export of one classification: the overlay as Secondary Capture, the label map as Segmentation.

The cube is not DICOM; what enters the patient's record is what the surgeon saw:

- **SC** (Secondary Capture Image Storage): the class colours blended over the
  synthetic RGB at the cube's size ``(H, W)`` (out-of-distribution pixels hatched grey,
  an unusable capture watermarked), so every SEG pixel lies on its SC pixel;
- **SEG** (Segmentation Storage, BINARY): one segment per model class, in the model's
  class order, its source image the SC; SNOMED CT codes where one exists (local
  scheme ``99NHSI`` otherwise); the algorithm identification names the model, its
  version and its sha256. Every class gets a frame, empty or not, so frame ``i`` is
  ``labels == class_ids[i]``.

Both carry the same study (Study Instance UID) and the patient data the user typed
(:class:`StudyInfo`), never guessed; the research-use notice is in each series
description. An unusable capture is refused unless forced, and then the notice says so.
Uses pydicom and highdicom (file format only; sending is ``remote.pacs``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import NeuroHSIError
from core.fileio import atomic_write

NOTICE = "Research use only - not for diagnostic use"
FORCED_NOTICE = "UNUSABLE capture exported on request - research use only"
MANUFACTURER = "NeuroHSI"
LOCAL_SCHEME = "99NHSI"  # private coding scheme for classes SNOMED CT has no code for
SC_SERIES_NUMBER, SEG_SERIES_NUMBER = 9001, 9002  # high: out of the way of the theatre's own series

# class key -> (segmented property category, segmented property type), pydicom's SNOMED CT keywords
_SNOMED = {
    "healthy": ("AnatomicalStructure", "Brain"),
    "tumour": ("MorphologicallyAbnormalStructure", "Neoplasm"),
    "venous_blood": ("AnatomicalStructure", "Vein"),
    "arterial_blood": ("AnatomicalStructure", "Artery"),
    "dura_mater": ("AnatomicalStructure", "DuraMater"),
}
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_LIMITS = {"patient_id": 64, "patient_name": 64, "accession_number": 16, "study_id": 16, "study_description": 64}


class DicomExportError(NeuroHSIError, ValueError):
    """The patient or study data, or the map, cannot be exported as DICOM."""


@dataclass(frozen=True)
class StudyInfo:
    """Who and which study, as the user typed it (dialog or CLI flags); nothing here is ever guessed.

    ``patient_name`` in DICOM form ``Family^Given`` (free text is kept as given);
    ``study_instance_uid`` from the order or worklist, "" for a new study.
    """

    patient_id: str
    patient_name: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""
    study_id: str = ""
    study_description: str = ""

    def validated(self) -> "StudyInfo":
        """This info with surrounding blanks removed; :class:`DicomExportError` naming the bad field."""
        clean = {name: str(getattr(self, name) or "").strip() for name in self.__dataclass_fields__}
        if not clean["patient_id"]:
            raise DicomExportError("patient id is required (it is never guessed)")
        for name, limit in _LIMITS.items():
            value = clean[name]
            if len(value) > limit:
                raise DicomExportError(f"{name.replace('_', ' ')} is longer than DICOM allows ({len(value)} > {limit})")
            if "\\" in value or any(ord(ch) < 32 for ch in value):
                raise DicomExportError(f"{name.replace('_', ' ')} must not hold a backslash or control characters")
        uid = clean["study_instance_uid"]
        if uid and (len(uid) > 64 or not _UID.match(uid)):
            raise DicomExportError(f"study instance UID {uid!r} is not a DICOM UID (digits and dots, at most 64)")
        return StudyInfo(**clean)


@dataclass(frozen=True)
class DicomExport:
    """The two objects of one export (pydicom ``Dataset`` s) and the study they share."""

    sc: object
    seg: object
    study_instance_uid: str
    forced: bool

    def write(self, out_dir: str | Path, *, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>-SC.dcm`` and ``<stem>-SEG.dcm`` (DICOM files with meta header) atomically."""
        out_dir = Path(out_dir)
        if not out_dir.is_dir():
            raise DicomExportError(f"{out_dir}: output folder does not exist")
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in stem) or "capture"
        return (write_dataset(out_dir / f"{safe}-SC.dcm", self.sc), write_dataset(out_dir / f"{safe}-SEG.dcm", self.seg))


def write_dataset(path: str | Path, dataset) -> Path:
    """One pydicom dataset as a DICOM file (preamble, meta header), atomically."""
    return atomic_write(path, lambda fh: dataset.save_as(fh, enforce_file_format=True))


def build_dicom(
    result,
    study: StudyInfo,
    *,
    capture_id: str,
    force: bool = False,
    palette: str = "thesis",
    opacity: float = 0.45,
    software_version: str = "unknown",
) -> DicomExport:
    """SC + SEG of a :class:`core.model.inference.ClassificationResult`.

    ``result.labels`` uint8 (H, W) class ids, 0 not classified; ``result.rgb`` uint8 (H, W, 3).
    Raises :class:`core.capture.quality.UnusableCaptureError` for an unusable capture unless
    ``force``, and :class:`DicomExportError` for bad patient data or a map it cannot encode.
    """
    from core.capture.quality import require_usable

    study = study.validated()
    quality = getattr(result, "quality", None)
    require_usable(quality, force=force, name=capture_id)  # before anything is built
    forced = quality is not None and not quality.usable
    labels = np.asarray(result.labels)
    if labels.ndim != 2 or labels.dtype != np.uint8 or min(labels.shape) < 1:
        raise DicomExportError(f"label map must be uint8 (H, W), got {labels.dtype} {labels.shape}")

    import highdicom as hd
    from pydicom.uid import generate_uid

    study_uid = study.study_instance_uid or generate_uid()
    notice = FORCED_NOTICE if forced else NOTICE
    info = result.model
    comments = _comments(result, capture_id, notice)
    sc = hd.sc.SCImage(
        pixel_array=_overlay_pixels(result, palette=palette, opacity=opacity, forced=forced),
        photometric_interpretation="RGB",
        bits_allocated=8,
        # highdicom insists on a coordinate system; the orientation is cleared below (type 2: unknown)
        coordinate_system="PATIENT",
        patient_orientation=("L", "F"),
        study_instance_uid=study_uid,
        series_instance_uid=generate_uid(),
        series_number=SC_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_id=study.patient_id,
        patient_name=study.patient_name or None,
        accession_number=study.accession_number or None,
        study_id=study.study_id or None,
        series_description=f"NeuroHSI overlay: {notice}"[:64],
    )
    sc.ImageComments = comments
    # The view's orientation to the patient is not known: say so (empty) rather than guess.
    sc.PatientOrientation = None
    sc.BurnedInAnnotation = "YES" if forced else "NO"
    if study.study_description:
        sc.StudyDescription = study.study_description
    sc.ManufacturerModelName = MANUFACTURER
    sc.SoftwareVersions = software_version

    algorithm = hd.AlgorithmIdentificationSequence(
        name=str(info.name)[:64] or "unnamed model",
        family=_codes().cid7162.ArtificialIntelligence,
        version=str(info.version)[:64] or "unknown",
        source=MANUFACTURER,
        parameters={"sha256": info.sha256, "source": "local" if result.source == "local" else "remote"},
    )
    segment_numbers = np.zeros(256, dtype=np.uint8)  # class id -> segment number (0: background)
    for number, class_id in enumerate(info.class_ids, start=1):
        segment_numbers[int(class_id)] = number
    seg = hd.seg.Segmentation(
        source_images=[sc],
        pixel_array=segment_numbers[labels],
        segmentation_type="BINARY",
        segment_descriptions=segment_descriptions(info.class_ids, info.class_names, algorithm, palette=palette),
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=software_version,
        device_serial_number="none",
        omit_empty_frames=False,  # one frame per class, so frame i is class_ids[i] even when empty
        content_description="NeuroHSI tissue classes"[:64],
        content_label="NEUROHSI",
        series_description=f"NeuroHSI tissue map: {notice}"[:64],
    )
    seg.ImageComments = comments
    return DicomExport(sc=sc, seg=seg, study_instance_uid=study_uid, forced=forced)


def segment_descriptions(class_ids, class_names, algorithm, *, palette: str = "thesis") -> list:
    """One ``highdicom`` SegmentDescription per class, numbered from 1 in ``class_ids`` order."""
    import highdicom as hd

    from core.classes import class_table

    table = class_table()
    out = []
    for number, (class_id, name) in enumerate(zip(class_ids, class_names), start=1):
        try:
            tissue = table.by_id(int(class_id))
        except KeyError:
            tissue = None
        category, kind = _property_codes(tissue.key if tissue else None, int(class_id), str(name))
        colour = None
        if tissue is not None:
            colour = hd.color.CIELabColor.from_rgb(*table.colour(int(class_id), palette))
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=str(name)[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type="AUTOMATIC",
                algorithm_identification=algorithm,
                display_color=colour,
            )
        )
    return out


def _property_codes(key: str | None, class_id: int, name: str):
    """(category, type) codes: SNOMED CT where a code exists, else the local scheme."""
    codes = _codes()
    if key in _SNOMED:
        category, kind = _SNOMED[key]
        return getattr(codes.SCT, category), getattr(codes.SCT, kind)
    from pydicom.sr.coding import Code

    return codes.SCT.Tissue, Code(f"NHSI{class_id}", LOCAL_SCHEME, name[:64] or f"class {class_id}")


def _codes():
    from pydicom.sr.codedict import codes

    return codes


def _overlay_pixels(result, *, palette: str, opacity: float, forced: bool) -> np.ndarray:
    """uint8 (H, W, 3): the map as shown (blend, then the flag layers of :mod:`core.output.legend`: not
    measured, out of distribution, uncertain; the unusable watermark), at the cube's size."""
    from core.output.legend import apply_flags, flag_layers
    from core.output.render import blend
    from core.output.trust_render import UNUSABLE_WATERMARK, watermark

    labels = np.asarray(result.labels)
    pixels = blend(np.asarray(result.rgb, dtype=np.uint8)[..., :3], labels, palette=palette,
                   alpha=float(np.clip(opacity, 0, 1)))
    pixels = apply_flags(pixels, flag_layers(result))
    if forced:
        pixels = watermark(pixels, UNUSABLE_WATERMARK)[..., :3]
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def _comments(result, capture_id: str, notice: str) -> str:
    """Image Comments: the notice, the model identity and the trust facts, for a reader of the record."""
    info = result.model
    quality = getattr(result, "quality", None)
    lines = [
        notice,
        f"Model: {info.name} {info.version} sha256 {info.sha256}",
        f"Classified {result.classified_at} ({'local' if result.source == 'local' else 'remote'}); capture {capture_id}",
    ]
    if quality is not None:
        lines.append(f"Capture quality: {quality.status} ({quality.reason})")
    if getattr(result, "ood_fraction", None) is not None:
        lines.append(f"Outside the training data (grey hatched): {100 * float(result.ood_fraction):.1f} %")
    return "\n".join(lines)[:10240]
