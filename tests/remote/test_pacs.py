"""Sending to a PACS: a real pynetdicom Storage SCP on 127.0.0.1, the outbox through an outage and a restart."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from core.audit.events import default_log
from core.capture.files import capture_id_for
from core.capture.synthetic.captures import generate_capture
from core.model.choice import resolve_model
from core.model.inference import classify_files
from core.output.dicom import StudyInfo, build_dicom
from remote.pacs.node import PacsConfigError, PacsError, PacsNode, echo, store
from remote.pacs.outbox import Outbox, backoff_s
from tests.support.dicom_scp import AE_TITLE, StorageSCP, self_signed_tls


@pytest.fixture(scope="module")
def classified():
    folder = Path(tempfile.mkdtemp())
    raw = generate_capture(seed=7).write_nemesis_files(folder)
    return classify_files(raw, resolve_model(None)), capture_id_for(raw)


@pytest.fixture
def exported(tmp_path, classified):
    """(result, SC path, SEG path) written by the real exporter."""
    result, capture_id = classified
    export = build_dicom(result, StudyInfo(patient_id="MRN-7", patient_name="Roe^Ann"), capture_id=capture_id)
    sc, seg = export.write(tmp_path, stem=capture_id)
    return result, sc, seg


@pytest.fixture
def scp(tmp_path):
    server = StorageSCP(tmp_path / "pacs").start()
    yield server
    server.stop()


def _node(scp: StorageSCP, **kw) -> PacsNode:
    return PacsNode(ae_title=AE_TITLE, host="127.0.0.1", port=scp.port, timeout_s=5.0, **kw)


def test_echo_answers_and_a_closed_port_does_not(scp):
    assert "answered C-ECHO" in echo(_node(scp))
    port = scp.port
    scp.stop()
    with pytest.raises(PacsError, match="cannot be reached|aborted"):
        echo(PacsNode(ae_title=AE_TITLE, host="127.0.0.1", port=port, timeout_s=2.0))


def test_scp_receives_sc_and_seg_and_they_validate(tmp_path, scp, exported):
    result, sc_path, seg_path = exported
    outbox = Outbox(tmp_path / "outbox")
    for path, kind in ((sc_path, "SC"), (seg_path, "SEG")):
        outbox.add(path, capture="ID0018C01", kind=kind)
    report = outbox.flush(_node(scp))
    assert len(report.sent) == 2 and not report.failed and report.waiting == 0
    assert outbox.items() == []
    received = {pydicom.dcmread(p).Modality: pydicom.dcmread(p) for p in scp.files()}
    sc, seg = received["OT"], received["SEG"]
    assert scp.received == [sc.SOPInstanceUID, seg.SOPInstanceUID]  # SC first: the SEG refers to it
    assert scp.calling_aes == ["NEUROHSI", "NEUROHSI"]
    assert sc.StudyInstanceUID == seg.StudyInstanceUID and sc.PatientID == seg.PatientID == "MRN-7"
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == sc.SOPInstanceUID
    frames = seg.pixel_array.reshape(-1, *result.labels.shape)
    for i, class_id in enumerate(result.model.class_ids):
        np.testing.assert_array_equal(frames[i].astype(bool), result.labels == class_id)
    np.testing.assert_array_equal(sc.pixel_array, pydicom.dcmread(sc_path).pixel_array)
    sent = [e for e in default_log().entries() if e.event == "sent"]
    assert [e.details["kind"] for e in sent] == ["SC", "SEG"] and AE_TITLE in sent[0].details["pacs"]
    assert "MRN-7" not in json.dumps([e.details for e in sent])  # the sent record names files, not patients


def test_outbox_survives_an_outage_and_a_restart(tmp_path, scp, exported):
    _, sc_path, seg_path = exported
    node = _node(scp)
    scp.stop()  # the PACS is down
    outbox = Outbox(tmp_path / "outbox")
    outbox.add(sc_path, kind="SC")
    outbox.add(seg_path, kind="SEG")
    now = time.time()
    report = outbox.flush(node, now=now)
    assert report.sent == [] and len(report.failed) == 2 and report.waiting == 2
    assert all("cannot be reached" in reason or "aborted" in reason for reason in report.failed.values())

    restarted = Outbox(tmp_path / "outbox")  # the app restarts: only the folder remains
    items = restarted.items()
    assert [i.kind for i in items] == ["SC", "SEG"] and all(i.attempts == 1 for i in items)
    assert all(i.next_try_at == pytest.approx(now + backoff_s(1)) for i in items)
    calls = []
    assert restarted.flush(node, now=now + 1, sender=lambda n, p: calls.append(p) or {}).waiting == 2
    assert calls == []  # not due yet: backoff honoured

    scp.start()  # back up, same port
    report = restarted.flush(node, now=now + backoff_s(1) + 1)
    assert len(report.sent) == 2 and report.waiting == 0
    assert len(scp.received) == 2 and {p.name for p in scp.files()} == {f"{u}.dcm" for u in scp.received}


def test_failures_back_off_and_a_crash_between_files_loses_nothing(tmp_path, exported):
    _, sc_path, _ = exported
    outbox = Outbox(tmp_path / "outbox")
    item = outbox.add(sc_path)
    item.path.with_suffix(".json").unlink()  # died after the object, before its state
    assert [i.path for i in outbox.items()] == [item.path] and outbox.items()[0].due(time.time())
    for attempt in range(1, 4):
        outbox.flush(PacsNode("X", "127.0.0.1", 9), force=True, now=1000.0,
                     sender=lambda n, p: (_ for _ in ()).throw(PacsError("PACS down")))
        assert outbox.items()[0].attempts == attempt
    assert outbox.items()[0].next_try_at == 1000.0 + backoff_s(3) and "PACS down" in outbox.items()[0].last_error
    assert [backoff_s(n) for n in (0, 1, 2, 3)] == [0.0, 30.0, 60.0, 120.0] and backoff_s(50) == 3600.0


def test_two_flushes_at_once_send_each_object_once(tmp_path, scp, exported):
    """The GUI's retry timer and `neurohsi pacs-outbox --send` flushing together: one sends, one says so."""
    import threading

    _, sc_path, seg_path = exported
    node = _node(scp)
    folder = tmp_path / "outbox"
    Outbox(folder).add(sc_path, kind="SC")
    Outbox(folder).add(seg_path, kind="SEG")
    sending, release = threading.Event(), threading.Event()

    def slow_store(n, paths):  # the real C-STORE, held until the second flush has tried
        sending.set()
        release.wait(30)
        return store(n, paths)

    first: list = []
    worker = threading.Thread(target=lambda: first.append(Outbox(folder).flush(node, force=True, sender=slow_store)))
    worker.start()
    assert sending.wait(30)
    second = Outbox(folder).flush(node, force=True)  # another Outbox object, as another process has
    release.set()
    worker.join(30)
    assert second.busy and second.sent == [] and second.waiting == 2
    assert "being sent by another NeuroHSI" in second.line(node.label)
    assert len(first[0].sent) == 2 and first[0].waiting == 0
    assert len(scp.received) == 2  # each object reached the PACS once

    # Across processes too: a lock held by another process makes a flush send nothing.
    import subprocess
    import sys

    Outbox(folder).add(sc_path, kind="SC")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)", str(folder / ".flush.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert Outbox(folder).flush(node, force=True).busy
    finally:
        holder.kill()
        holder.wait(10)
    assert Outbox(folder).flush(node, force=True).sent  # the lock went with the process
    assert len(scp.received) == 3


def test_store_over_tls_verifies_the_certificate(tmp_path, exported):
    _, sc_path, _ = exported
    context, ca = self_signed_tls(tmp_path)
    server = StorageSCP(tmp_path / "pacs", ssl_context=context).start()
    try:
        node = PacsNode(AE_TITLE, "127.0.0.1", server.port, tls=True, ca_file=str(ca), timeout_s=5.0)
        assert "answered" in echo(node)
        assert store(node, [sc_path]) == {sc_path: None}
        assert len(server.received) == 1
        with pytest.raises(PacsError):  # the system trust store does not know this certificate
            echo(PacsNode(AE_TITLE, "127.0.0.1", server.port, tls=True, timeout_s=5.0))
    finally:
        server.stop()


def test_node_settings_env_wins_and_bad_values_are_named():
    node = PacsNode.from_values({"ae_title": "PACS1", "host": "pacs.local", "port": "104"},
                                env={"NEUROHSI_PACS_PORT": "11112", "NEUROHSI_PACS_TLS": "1"})
    assert (node.ae_title, node.host, node.port, node.tls, node.calling_ae) == ("PACS1", "pacs.local", 11112, True, "NEUROHSI")
    with pytest.raises(PacsConfigError, match="no PACS configured.*host"):
        PacsNode.from_values({"ae_title": "PACS1", "port": 104}, env={})
    with pytest.raises(PacsConfigError, match="ae title"):
        PacsNode("A" * 17, "h", 104)
    with pytest.raises(PacsConfigError, match="port"):
        PacsNode("A", "h", 70000)
    with pytest.raises(PacsConfigError, match="port must be a number"):
        PacsNode.from_values({"ae_title": "A", "host": "h", "port": "x"}, env={})
