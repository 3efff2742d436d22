"""DICOM export: SC + SEG re-read with pydicom, SEG frames equal the label map per class."""
from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

from core.capture.files import capture_id_for
from core.capture.quality import QualityCheck, UnusableCaptureError, make_report
from core.capture.synthetic.captures import generate_capture
from core.model.choice import resolve_model
from core.model.inference import classify_files
from core.output.dicom import NOTICE, DicomExportError, StudyInfo, build_dicom

STUDY = StudyInfo(patient_id="MRN-0042", patient_name="Doe^Jane", accession_number="ACC17",
                  study_instance_uid="1.2.826.0.1.3680043.8.498.123", study_id="S1", study_description="Craniotomy")


@pytest.fixture(scope="module")
def result():
    """A real local classification, demo model, synthetic full-sensor capture as NEMESIS files."""
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    raw = generate_capture(seed=5).write_nemesis_files(folder)
    return classify_files(raw, resolve_model(None)), capture_id_for(raw)


def _unusable(result):
    report = make_report((QualityCheck("saturated", "unusable", "raw saturated", 0.5),))
    return dataclasses.replace(result, quality=report)


def test_sc_and_seg_reread_with_pydicom(tmp_path, result):
    res, capture_id = result
    export = build_dicom(res, STUDY, capture_id=capture_id, software_version="0.1.0")
    sc_path, seg_path = export.write(tmp_path, stem=capture_id)
    sc, seg = pydicom.dcmread(sc_path), pydicom.dcmread(seg_path)
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    for ds in (sc, seg):
        assert ds.StudyInstanceUID == STUDY.study_instance_uid
        assert ds.PatientID == "MRN-0042" and str(ds.PatientName) == "Doe^Jane" and ds.AccessionNumber == "ACC17"
        assert NOTICE in ds.SeriesDescription
        assert res.model.sha256 in ds.ImageComments
    assert sc.SeriesInstanceUID != seg.SeriesInstanceUID
    h, w = res.labels.shape
    assert sc.pixel_array.shape == (h, w, 3) and sc.PhotometricInterpretation == "RGB"
    assert (seg.Rows, seg.Columns) == (h, w)
    # The SEG's source image is the SC.
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == sc.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == sc.SOPInstanceUID


def test_seg_frames_equal_the_label_map_per_class(tmp_path, result):
    res, capture_id = result
    labels = res.labels.copy()
    labels[:5, :5] = 0  # some pixels not classified
    res = dataclasses.replace(res, labels=labels)
    _, seg_path = build_dicom(res, STUDY, capture_id=capture_id).write(tmp_path, stem="x")
    seg = pydicom.dcmread(seg_path)
    frames = seg.pixel_array.reshape(-1, *labels.shape)
    assert len(frames) == len(res.model.class_ids) == len(seg.SegmentSequence)
    for i, frame_group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = frame_group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        class_id = res.model.class_ids[number - 1]
        np.testing.assert_array_equal(frames[i].astype(bool), labels == class_id)
    assert sum(int(f.sum()) for f in frames) == int(np.count_nonzero(labels))


def test_segments_are_snomed_coded_and_name_the_algorithm(tmp_path, result):
    res, capture_id = result
    _, seg_path = build_dicom(res, STUDY, capture_id=capture_id).write(tmp_path, stem="x")
    seg = pydicom.dcmread(seg_path)
    by_label = {s.SegmentLabel: s for s in seg.SegmentSequence}
    tumour = by_label["Tumour"].SegmentedPropertyTypeCodeSequence[0]
    assert (tumour.CodingSchemeDesignator, tumour.CodeValue) == ("SCT", "108369006")
    dura = by_label["Dura mater"].SegmentedPropertyTypeCodeSequence[0]
    assert (dura.CodingSchemeDesignator, dura.CodeValue) == ("SCT", "18545000")
    algorithm = by_label["Tumour"].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == res.model.name and algorithm.AlgorithmVersion == res.model.version
    assert res.model.sha256 in algorithm.AlgorithmParameters
    assert all(s.SegmentAlgorithmType == "AUTOMATIC" for s in seg.SegmentSequence)


def test_a_new_study_uid_is_shared_by_both_objects(result):
    res, capture_id = result
    export = build_dicom(res, StudyInfo(patient_id="P1"), capture_id=capture_id)
    assert export.sc.StudyInstanceUID == export.seg.StudyInstanceUID == export.study_instance_uid
    assert export.sc.PatientName in (None, "") and export.sc.PatientOrientation in (None, "")


def test_unusable_capture_is_refused_unless_forced(tmp_path, result):
    res, capture_id = result
    bad = _unusable(res)
    with pytest.raises(UnusableCaptureError):
        build_dicom(bad, STUDY, capture_id=capture_id)
    assert list(tmp_path.iterdir()) == []
    export = build_dicom(bad, STUDY, capture_id=capture_id, force=True)
    assert export.forced and "UNUSABLE" in export.sc.SeriesDescription and "UNUSABLE" in export.seg.SeriesDescription
    assert export.sc.BurnedInAnnotation == "YES"


@pytest.mark.parametrize(
    "study, message",
    [
        (StudyInfo(patient_id="  "), "patient id is required"),
        (StudyInfo(patient_id="P" * 65), "patient id is longer"),
        (StudyInfo(patient_id="P1", accession_number="A" * 17), "accession number is longer"),
        (StudyInfo(patient_id="P1\\P2"), "backslash"),
        (StudyInfo(patient_id="P1", study_instance_uid="1.2.abc"), "not a DICOM UID"),
        (StudyInfo(patient_id="P1", study_instance_uid="1.02.3"), "not a DICOM UID"),
    ],
)
def test_bad_patient_data_is_refused(result, study, message):
    res, capture_id = result
    with pytest.raises(DicomExportError, match=message):
        build_dicom(res, study, capture_id=capture_id)
