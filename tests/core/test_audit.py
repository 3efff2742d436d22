"""The audit log: hash chain, head file, and what verify finds after tampering."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from core.audit.events import EVENTS, audit_log_path, clean_details, record, set_operator
from core.audit.log import GENESIS, AuditLog, entry_hash


def _filled(tmp_path, n=5) -> AuditLog:
    log = AuditLog(tmp_path / "audit.sqlite")
    for i in range(n):
        log.append("classified", {"i": i, "model": {"sha256": "ab" * 32}}, os_user="alice", operator="Dr X")
    return log


def _tamper(log: AuditLog, sql: str, *args) -> None:
    # Someone with the file and the sqlite3 tool: triggers dropped, then the edit.
    db = sqlite3.connect(log.path)
    db.execute("DROP TRIGGER entries_no_update")
    db.execute("DROP TRIGGER entries_no_delete")
    db.execute(sql, args)
    db.commit()
    db.close()


def test_entries_chain_and_head_file(tmp_path):
    log = _filled(tmp_path, 3)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
    e = entries[1]
    assert e.hash == entry_hash(e.seq, e.at, e.os_user, e.operator, e.event, json.dumps(e.details, sort_keys=True,
                                separators=(",", ":")), e.prev_hash)
    assert e.at.endswith("Z") and e.os_user == "alice" and e.operator == "Dr X"
    head = json.loads(log.head_path.read_text())
    assert head["seq"] == 3 and head["hash"] == entries[-1].hash
    assert log.verify() == []


def test_triggers_refuse_update_and_delete(tmp_path):
    log = _filled(tmp_path, 2)
    db = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE entries SET event = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM entries WHERE seq = 2")
    db.close()
    assert log.verify() == []


def test_verify_finds_changed_content(tmp_path):
    log = _filled(tmp_path)
    _tamper(log, "UPDATE entries SET details = ? WHERE seq = 2", json.dumps({"i": 99}))
    problems = log.verify()
    assert any("entry 2" in p and "content changed" in p for p in problems), problems


def test_verify_finds_changed_operator(tmp_path):
    log = _filled(tmp_path)
    _tamper(log, "UPDATE entries SET operator = 'Dr Y' WHERE seq = 4")
    assert any("entry 4" in p for p in log.verify())


def test_verify_finds_a_removed_entry(tmp_path):
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE seq = 3")
    problems = log.verify()
    assert any("entry 3 removed" in p for p in problems), problems


def test_verify_finds_removed_last_entries(tmp_path):
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE seq >= 4")
    problems = log.verify()
    assert any("ends at entry 3" in p and "entry 5" in p for p in problems), problems


@pytest.mark.parametrize("keep", [0, 0.5])
def test_verify_finds_a_truncated_log(tmp_path, keep):
    log = _filled(tmp_path, 40)
    size = log.path.stat().st_size
    with open(log.path, "r+b") as fh:
        fh.truncate(int(size * keep))
    assert log.verify() != []


def test_verify_finds_a_removed_head_or_log(tmp_path):
    log = _filled(tmp_path, 2)
    log.head_path.unlink()
    assert any("head file missing" in p for p in log.verify())
    log2 = _filled(tmp_path / "b", 2)
    log2.path.unlink()
    assert any("missing" in p for p in log2.verify())


def test_an_append_after_truncation_keeps_the_evidence(tmp_path):
    log = _filled(tmp_path)
    _tamper(log, "DELETE FROM entries WHERE seq = 5")
    log.append("settings_changed", {"key": "x"}, os_user="bob")
    entries = log.entries()
    assert [e.event for e in entries[-2:]] == ["integrity_break", "settings_changed"]
    assert entries[-2].details["head_file"]["seq"] == 5
    problems = log.verify()
    assert problems and any("integrity" in p or "removed" in p for p in problems)


def test_export_csv_and_json(tmp_path):
    log = _filled(tmp_path, 3)
    doc = json.loads(log.export(tmp_path / "out.json").read_text())
    assert doc["verified"] is True and [e["seq"] for e in doc["entries"]] == [1, 2, 3]
    text = log.export(tmp_path / "out.csv").read_text()
    assert text.splitlines()[0].startswith("seq,at,os_user") and len(text.splitlines()) == 4
    with pytest.raises(ValueError, match="csv or .json"):
        log.export(tmp_path / "out.txt")


def test_clean_details_refuses_image_data_and_drops_secrets():
    with pytest.raises(TypeError, match="image data"):
        clean_details({"labels": np.zeros((4, 4), np.uint8)})
    with pytest.raises(TypeError, match="image data"):
        clean_details({"raw": b"\x00\x01"})
    cleaned = clean_details({
        "storage_key": "abc", "sas_token": "sv=1&sig=zzz", "endpoint": "https://x/?sig=SECRETVALUE",
        "share": np.float32(0.25), "nested": {"password": "p", "n": np.int64(3)},
    })
    assert "storage_key" not in cleaned and "sas_token" not in cleaned
    assert "SECRETVALUE" not in cleaned["endpoint"]
    assert cleaned["share"] == pytest.approx(0.25) and cleaned["nested"] == {"n": 3}


def test_record_uses_the_home_log_and_the_operator(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROHSI_HOME", str(tmp_path))
    set_operator("  Nurse   Ratched ")
    try:
        entry = record("labels_saved", capture="ID0001C01", classes=[1, 2])
    finally:
        set_operator(None)
    assert audit_log_path() == tmp_path / "audit" / "audit.sqlite"
    assert entry is not None and entry.operator == "Nurse Ratched" and entry.details["classes"] == [1, 2]
    assert AuditLog(audit_log_path()).verify() == []
    with pytest.raises(ValueError, match="unknown audit event"):
        record("coffee_made")
    assert "classified" in EVENTS


def test_record_survives_an_unwritable_log(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NEUROHSI_HOME", str(blocker))
    assert record("settings_changed", key="palette") is None
    assert "not written" in caplog.text


def test_concurrent_writers_keep_one_chain(tmp_path):
    import threading

    path = tmp_path / "audit.sqlite"

    def write(n):
        log = AuditLog(path)  # each writer its own connection, as the GUI and a CLI command would
        for i in range(8):
            log.append("exported", {"writer": n, "i": i}, os_user="u")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = AuditLog(path)
    assert len(log.entries()) == 24 and log.verify() == []
    assert not any(e.event == "integrity_break" for e in log.entries())


def test_the_log_folder_is_the_owners_only(tmp_path):
    log = _filled(tmp_path / "new", 1)
    assert log.path.parent.stat().st_mode & 0o077 == 0


def test_classification_details_shares_and_model():
    from types import SimpleNamespace

    from core.audit.events import classification_details

    labels = np.array([[0, 1], [2, 2]], np.uint8)
    probabilities = np.array([[[0.2, 0.8], [0.9, 0.1]], [[0.45, 0.55], [0.3, 0.7]]], np.float32)
    model = SimpleNamespace(name="m", version="2", sha256="ab" * 32)
    plain = SimpleNamespace(labels=labels, probabilities=probabilities, model=model, source="https://x/score",
                            quality=None, ood_fraction=0.5)
    details = classification_details(plain, capture="ID1")
    assert details["masked_share"] == 0.25 and details["ood_share"] == 0.5 and details["uncertain_share"] == 0.0
    assert details["source"] == "remote" and details["endpoint"] == "https://x/score"
    assert details["model"] == {"name": "m", "version": "2", "sha256": "ab" * 32}
    flagged = SimpleNamespace(**vars(plain), uncertain_fraction=0.125)  # the product's own flag wins
    assert classification_details(flagged)["uncertain_share"] == 0.125
    assert "probabilities" not in json.dumps(details)
