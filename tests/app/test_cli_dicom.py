"""``neurohsi export-dicom``, ``pacs echo|outbox`` and ``audit show|verify|export`` end to end."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pydicom
import pytest

from app.cli.main import main
from core.audit.events import default_log
from core.capture.files import write_frame
from core.capture.synthetic.captures import generate_capture
from tests.support.cli import assert_one_line_error, neurohsi
from tests.support.dicom_scp import AE_TITLE, StorageSCP

PATIENT = ["--patient-id", "MRN-0042", "--patient-name", "Doe^Jane", "--accession", "ACC9"]


@pytest.fixture(scope="module")
def brain():
    return generate_capture(seed=21, patient="ID18")  # full sensor, thesis profile: the demo model fits


def _triplet(folder, capture, raw=None):
    folder.mkdir(parents=True, exist_ok=True)
    write_frame(folder / "ID0042C01.tif", capture.raw if raw is None else raw, capture.metadata)
    write_frame(folder / "ID0042CD01.tif", capture.dark, capture.metadata)
    write_frame(folder / "ID0042CW01.tif", capture.white, capture.metadata)
    return folder / "ID0042C01.tif"


@pytest.fixture
def raw(tmp_path, brain):
    return _triplet(tmp_path / "capture", brain)


@pytest.fixture
def scp(tmp_path):
    server = StorageSCP(tmp_path / "pacs").start()
    yield server
    server.stop()


def _pacs_flags(port):
    return ["--pacs-ae", AE_TITLE, "--pacs-host", "127.0.0.1", "--pacs-port", str(port)]


def test_export_writes_sc_and_seg_and_audits_it(tmp_path, raw, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export-dicom", str(raw), *PATIENT, "--out", str(out)]) == 0
    sc, seg = pydicom.dcmread(out / "ID0042C01-SC.dcm"), pydicom.dcmread(out / "ID0042C01-SEG.dcm")
    assert sc.PatientID == seg.PatientID == "MRN-0042" and sc.StudyInstanceUID == seg.StudyInstanceUID
    assert seg.Rows == sc.Rows and seg.NumberOfFrames == len(seg.SegmentSequence) == 5
    events = [e.event for e in default_log().entries()]
    assert events == ["capture_opened", "classified", "exported"]
    classified, exported = default_log().entries()[1:]
    assert classified.details["model"]["sha256"] in seg.ImageComments
    assert classified.details["quality"] == "ok" and classified.details["source"] == "local"
    assert 0 <= classified.details["ood_share"] < 0.1 and 0 <= classified.details["masked_share"] <= 1
    assert exported.details["format"] == "dicom" and exported.details["patient_id"] == "MRN-0042"


def test_export_and_send_reaches_the_scp(tmp_path, raw, scp, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export-dicom", str(raw), *PATIENT, "--out", str(out), "--send", *_pacs_flags(scp.port)]) == 0
    assert "2 sent to TESTPACS@127.0.0.1" in capsys.readouterr().out
    received = sorted(pydicom.dcmread(p).Modality for p in scp.files())
    assert received == ["OT", "SEG"]
    assert [e.event for e in default_log().entries()][-2:] == ["sent", "sent"]


def test_pacs_down_keeps_objects_in_the_outbox_until_sent(tmp_path, raw, capsys):
    out = tmp_path / "out"
    out.mkdir()
    scp = StorageSCP(tmp_path / "pacs").start()
    port = scp.port
    scp.stop()
    assert main(["export-dicom", str(raw), *PATIENT, "--out", str(out), "--send", *_pacs_flags(port)]) == 0
    assert "2 waiting in the outbox" in capsys.readouterr().err
    assert main(["pacs", "outbox"]) == 0
    listing = capsys.readouterr().out
    assert "2 object(s) waiting" in listing and "try 2 in" in listing
    scp = StorageSCP(tmp_path / "pacs", port=port).start()
    try:
        assert main(["pacs", "outbox", "--send", *_pacs_flags(port)]) == 0
        assert "2 sent" in capsys.readouterr().out and len(scp.received) == 2
    finally:
        scp.stop()
    assert main(["pacs", "outbox"]) == 0
    assert "0 object(s) waiting" in capsys.readouterr().out


def test_pacs_echo_from_env(scp, monkeypatch, capsys):
    monkeypatch.setenv("NEUROHSI_PACS_AE_TITLE", AE_TITLE)
    monkeypatch.setenv("NEUROHSI_PACS_HOST", "127.0.0.1")
    monkeypatch.setenv("NEUROHSI_PACS_PORT", "1")  # the flag wins over the env
    assert main(["pacs", "echo", "--pacs-port", str(scp.port)]) == 0
    assert "answered C-ECHO" in capsys.readouterr().out


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, raw, brain):
    out = tmp_path / "out"
    out.mkdir()
    assert_one_line_error(neurohsi("export-dicom", raw, "--patient-id", "P", "--study-uid", "1.2.x", "--out", out),
                          "not a DICOM UID")
    assert_one_line_error(neurohsi("export-dicom", raw, "--patient-id", "P", "--out", out, "--send"),
                          "no PACS configured")
    bad = _triplet(tmp_path / "bad", brain, raw=np.full_like(brain.raw, 1023))
    assert_one_line_error(neurohsi("export-dicom", bad, "--patient-id", "P", "--out", out),
                          "ID0042C01", "capture unusable")
    assert list(out.iterdir()) == []
    assert neurohsi("export-dicom", raw, "--out", out).returncode == 2  # --patient-id is required
    assert_one_line_error(neurohsi("pacs", "echo", "--pacs-ae", "X", "--pacs-host", "127.0.0.1", "--pacs-port", "1"),
                          "X@127.0.0.1:1")


def test_forced_unusable_export_says_so(tmp_path, brain):
    out = tmp_path / "out"
    out.mkdir()
    bad = _triplet(tmp_path / "bad", brain, raw=np.full_like(brain.raw, 1023))
    assert main(["export-dicom", str(bad), "--patient-id", "P", "--out", str(out), "--force"]) == 0
    sc = pydicom.dcmread(out / "ID0042C01-SC.dcm")
    assert "UNUSABLE" in sc.SeriesDescription and sc.BurnedInAnnotation == "YES"
    assert default_log().entries()[-1].details["forced"] is True


def test_audit_show_verify_export_and_tampering(tmp_path, raw, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["classify", str(raw), "-o", str(out / "map.png")]) == 0
    capsys.readouterr()
    assert main(["audit", "show", "--event", "classified"]) == 0
    shown = capsys.readouterr().out
    assert "classified" in shown and "sha256" in shown and "capture_opened" not in shown
    assert main(["audit", "verify"]) == 0
    assert "intact, 3 entries" in capsys.readouterr().out
    assert main(["audit", "export", str(out / "audit.json")]) == 0
    assert json.loads((out / "audit.json").read_text())["verified"] is True

    db = sqlite3.connect(default_log().path)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("UPDATE entries SET os_user = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    assert main(["audit", "verify"]) == 1
    captured = capsys.readouterr()
    assert "NOT intact" in captured.out and "entry 2" in captured.err
