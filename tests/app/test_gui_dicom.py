"""GUI: File ▸ Export to DICOM / PACS, Settings ▸ PACS "Test", the outbox in the status bar, Help ▸ Audit log."""
from __future__ import annotations

import sqlite3

import pydicom
import pytest
from PySide6.QtWidgets import QListWidget

from app.pacs_state import PacsSettingsState
from core.audit.events import current_operator, default_log, set_operator
from tests.support.dicom_scp import AE_TITLE, StorageSCP
from tests.support.gui import classify_and_wait, open_and_wait


@pytest.fixture
def scp(tmp_path):
    server = StorageSCP(tmp_path / "pacs").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_operator():
    yield
    set_operator(None)


@pytest.fixture
def classified_window(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    classify_and_wait(qtbot, window)
    return window


def _configure(window, port):
    state = PacsSettingsState(ae_title=AE_TITLE, host="127.0.0.1", port=str(port), operator_name="Dr Who")
    state.save(window.settings)


def _wait_export(qtbot, window):
    qtbot.waitUntil(lambda: window.pacs.idle() and window.sink.last is not None
                    and ("Wrote" in window.sink.last.text or "PACS" in window.sink.last.text), timeout=30_000)


def test_bad_patient_data_keeps_the_dialog_open(qtbot, classified_window, tmp_path):
    from app.dicom_dialog import show_dicom_export

    dialog = show_dicom_export(classified_window)
    dialog.out_edit.setText(str(tmp_path))
    dialog.accept()  # no patient id
    assert dialog.isVisible() and "patient id is required" in dialog.error_label.text()
    dialog.edits["patient_id"].setText("P1")
    dialog.edits["study_instance_uid"].setText("1.2.x")
    dialog.accept()
    assert dialog.isVisible() and "not a DICOM UID" in dialog.error_label.text()
    assert not dialog.send_check.isEnabled()  # no PACS configured
    assert list(tmp_path.glob("*.dcm")) == []


def test_export_and_send_from_the_dialog(qtbot, classified_window, tmp_path, scp):
    from app.dicom_dialog import show_dicom_export

    window = classified_window
    _configure(window, scp.port)
    assert current_operator() == "Dr Who"
    dialog = show_dicom_export(window)
    assert dialog.send_check.isEnabled() and dialog.send_check.isChecked()
    dialog.edits["patient_id"].setText("MRN-1")
    dialog.edits["patient_name"].setText("Doe^John")
    dialog.out_edit.setText(str(tmp_path))
    dialog.accept()
    _wait_export(qtbot, window)
    assert "sent to the PACS" in window.sink.last.text
    written = sorted(tmp_path.glob("*.dcm"))
    assert [p.name.split("-")[-1] for p in written] == ["SC.dcm", "SEG.dcm"]
    assert len(scp.received) == 2
    seg = pydicom.dcmread(next(p for p in scp.files() if pydicom.dcmread(p).Modality == "SEG"))
    assert seg.PatientID == "MRN-1" and seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0] \
        .AlgorithmName == window.result.model.name
    events = [(e.event, e.operator) for e in default_log().entries()]
    assert ("exported", "Dr Who") in events and events.count(("sent", "Dr Who")) == 2
    assert {"capture_opened", "classified", "settings_changed"} <= {e for e, _ in events}


def test_outbox_shows_waiting_objects_and_sends_them_when_the_pacs_is_back(qtbot, classified_window, tmp_path,
                                                                           make_window):
    from app.dicom_dialog import show_dicom_export
    from app.pacs_controller import show_outbox

    window = classified_window
    server = StorageSCP(tmp_path / "pacs").start()
    port = server.port
    server.stop()  # the PACS is down
    _configure(window, port)
    dialog = show_dicom_export(window)
    dialog.edits["patient_id"].setText("MRN-2")
    dialog.out_edit.setText(str(tmp_path))
    dialog.accept()
    _wait_export(qtbot, window)
    assert "wait in the outbox" in window.sink.last.text
    assert window.pacs.label.isVisible() and "2 waiting" in window.pacs.label.text()
    restarted = make_window()  # the app restarts: the outbox is read from disk
    assert "2 waiting" in restarted.pacs.label.text()
    listing = show_outbox(window).findChild(QListWidget, "pacs_outbox_list")
    assert listing.count() == 2 and "1 tries" in listing.item(0).text()
    server = StorageSCP(tmp_path / "pacs", port=port).start()
    try:
        window.pacs.retry()  # the timer's call: not due yet (backoff), nothing sent
        assert window.pacs._worker is None and len(server.received) == 0
        window.pacs.retry(force=True)  # "Send now"
        qtbot.waitUntil(lambda: window.pacs._worker is None and len(server.received) == 2, timeout=30_000)
    finally:
        server.stop()
    assert not window.pacs.label.isVisible()


def test_unusable_capture_needs_export_anyway(qtbot, classified_window, tmp_path):
    import dataclasses

    from app.dicom_dialog import show_dicom_export
    from core.capture.quality import QualityCheck, make_report

    window = classified_window
    window.result = dataclasses.replace(
        window.result, quality=make_report((QualityCheck("saturated", "unusable", "raw saturated", 0.5),)))
    dialog = show_dicom_export(window)
    assert dialog.force_check.isVisibleTo(dialog)
    dialog.edits["patient_id"].setText("P")
    dialog.out_edit.setText(str(tmp_path))
    dialog.accept()
    assert dialog.isVisible() and "Export anyway" in dialog.error_label.text()
    dialog.force_check.setChecked(True)
    dialog.accept()
    _wait_export(qtbot, window)
    sc = pydicom.dcmread(next(tmp_path.glob("*-SC.dcm")))
    assert "UNUSABLE" in sc.SeriesDescription


def test_settings_pacs_test_button_echoes(qtbot, make_window, scp):
    from app.pacs_settings import open_pacs_settings

    window = make_window()
    dialog = open_pacs_settings(window.settings, window)
    dialog.edits["ae_title"].setText(AE_TITLE)
    dialog.edits["host"].setText("127.0.0.1")
    dialog.edits["port"].setText(str(scp.port))
    with qtbot.waitSignal(dialog.tested, timeout=15_000) as blocker:
        dialog.test_button.click()
    assert blocker.args[0].startswith("OK") and "answered C-ECHO" in blocker.args[0]
    dialog.edits["port"].setText("not a port")
    dialog.accept()
    assert dialog.isVisible() and "port" in dialog.error_label.text()
    dialog.edits["port"].setText(str(scp.port))
    dialog.accept()
    assert window.settings.get("pacs_port") == str(scp.port)
    scp.stop()
    with qtbot.waitSignal(dialog.tested, timeout=15_000) as blocker:
        dialog.test()
    assert blocker.args[0].startswith("Failed")


def test_audit_log_dialog_shows_verifies_and_exports(qtbot, classified_window, tmp_path):
    from app.audit_dialog import AuditLogDialog

    window = classified_window
    window.actions["audit_log"].trigger()  # Help ▸ Audit log
    dialog = window.findChild(AuditLogDialog, "audit_log_dialog")
    assert dialog.table.rowCount() >= 2 and dialog.table.item(0, 4).text() == "classified"  # newest first
    assert dialog.verify() == [] and dialog.result_label.text().startswith("Intact")
    before = len(default_log().entries())
    dialog.export_to(tmp_path / "audit.csv")
    assert (tmp_path / "audit.csv").read_text().count("\n") == before + 1  # header + every entry
    assert default_log().entries()[-1].details["format"] == "audit-log"  # the export is on record too
    db = sqlite3.connect(default_log().path)
    db.execute("DROP TRIGGER entries_no_delete")
    db.execute("DELETE FROM entries WHERE seq = 1")
    db.commit()
    db.close()
    assert dialog.verify() and dialog.result_label.text().startswith("NOT intact")


def test_the_dialog_states_are_qt_free():
    import subprocess
    import sys

    code = ("import sys, app.pacs_state; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt')]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_settings_changes_are_audited_but_not_every_opacity_step(make_window):
    window = make_window()
    for value in (10, 20, 30):
        window.overlay_state.opacity = value
    window.overlay_state.palette = "colourblind"
    window.overlay_state.palette = "colourblind"  # unchanged: no entry
    changed = [e.details for e in default_log().entries() if e.event == "settings_changed"]
    assert changed == [{"setting": "palette", "old": "thesis", "new": "colourblind"}]
