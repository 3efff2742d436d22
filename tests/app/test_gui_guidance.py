"""Guidance: empty state, model readiness, drag and drop of a triplet, Help ▸ About and shortcuts."""
from __future__ import annotations

import json
import re
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog

from app.actions import ACTIONS
from app.build_info import build_info
from app.dropped_files import capture_from_drop
from tests.support.gui import classify_and_wait, open_and_wait

ROOT = Path(__file__).resolve().parents[2]
KEY = "support-call-must-not-see-this-key-77"


def wait_model(qtbot, window, state="ready"):
    qtbot.waitUntil(lambda: window.model_loader.state == state, timeout=60_000)


def test_empty_state_then_model_ready_indicator(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    assert window.map_area.stack.currentWidget() is window.map_area.empty
    assert window.map_area.empty.open_button.text().startswith("Open capture")
    assert "drop" in window.map_area.empty.hint.text()
    wait_model(qtbot, window)
    assert window.model_indicator.text().startswith("● Model ready: gui-test v3")
    assert "Model ready" in window.map_area.empty.model_text.text()
    open_and_wait(qtbot, window, raw)
    assert window.map_area.stack.currentWidget() is window.image_view
    # The first click finds the model loaded and warm: no "Loading model" step is waited on.
    assert classify_and_wait(qtbot, window).model.name == "gui-test"


def test_missing_model_says_what_to_do(qtbot, make_window, tmp_path):
    window = make_window(tmp_path / "nowhere.safetensors")
    qtbot.waitUntil(lambda: window.model_loader.state in ("missing", "failed"), timeout=30_000)
    for text in (window.model_indicator.toolTip(), window.map_area.empty.model_text.text()):
        assert "nowhere.safetensors" in text and "Settings ▸ Model" in text and "make demo-model" in text


def _drop(window, paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPointF(5, 5).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    if enter.isAccepted():
        window.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                    Qt.KeyboardModifier.NoModifier))
    return enter.isAccepted()


def test_drop_the_three_files_of_a_capture(qtbot, make_window, small_files):
    raw, model = small_files
    base, n = raw.stem.split("C")
    dark, white = raw.with_name(f"{base}CD{n}.tif"), raw.with_name(f"{base}CW{n}.tif")
    assert capture_from_drop([str(white), str(raw), str(dark)]) == (str(raw), str(dark), str(white))
    assert capture_from_drop([str(dark), str(white)]) is None  # references alone: nothing to open
    assert capture_from_drop(["/x/notes.txt"]) is None
    window = make_window(model)
    assert not _drop(window, [dark, white])
    with qtbot.waitSignal(window.capture_opened, timeout=20_000):
        assert _drop(window, [white, dark, raw])
    assert window.opened.capture.raw_path == raw


def test_build_info_reads_the_bundle_file(tmp_path, monkeypatch):
    info = build_info(tmp_path / "absent.json")
    assert info["build_date"] is None and info["bundled"] is False
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", info["version"])
    (tmp_path / "build_info.json").write_text(json.dumps({"build_date": "2026-11-29T05:00:00Z"}))
    monkeypatch.setattr("sys.frozen", True, raising=False)
    info = build_info(tmp_path / "build_info.json")
    assert info["build_date"] == "2026-11-29T05:00:00Z" and info["bundled"] is True
    (tmp_path / "broken.json").write_text("{not json")
    assert build_info(tmp_path / "broken.json")["build_date"] is None


def test_about_shows_version_model_licences_and_copies_diagnostics_without_secrets(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    # Set after classifying: the diagnostics name the endpoint; nothing is sent to it.
    window.settings.set("endpoint_url", "https://neuro.example.org/score")
    window.settings.set_endpoint_key(KEY, session_only=True)
    window.actions["about"].trigger()
    dialog = window.findChild(QDialog, "about_dialog")
    assert dialog is not None and dialog.isVisible()
    text = dialog.version_label.text()
    assert build_info()["version"] in text and result.model.sha256 in text
    names = [dialog.licences.item(r, 0).text() for r in range(dialog.licences.rowCount())]
    assert "pyqtgraph" in names and "torch" in names
    licences = {dialog.licences.item(r, 0).text(): dialog.licences.item(r, 2).text()
                for r in range(dialog.licences.rowCount())}
    assert licences["pyqtgraph"] == "MIT" and licences["PySide6-Essentials"].startswith("LGPL")
    assert "not for diagnostic use" in dialog.findChild(type(dialog.version_label), "about_research_use").text()
    dialog.copy_button.click()
    copied = QApplication.clipboard().text()
    assert copied.startswith(f"NeuroHSI {build_info()['version']}")
    assert result.model.sha256 in copied and "scoring/endpoint_url" in copied and "neuro.example.org" in copied
    assert str(window.model_path()) in copied and "torch " in copied
    assert "inference: CPU, ONNX Runtime " in copied
    assert KEY not in copied


def test_every_key_is_in_the_shortcuts_dialog_and_docs(qtbot, make_window, small_files):
    window = make_window(small_files[1])
    window.actions["shortcuts"].trigger()
    dialog = window.findChild(QDialog, "shortcuts_dialog")
    assert dialog is not None and dialog.isVisible()
    listed = " ".join(dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount()))
    docs = (ROOT / "docs" / "gui.md").read_text(encoding="utf-8")
    for spec in ACTIONS:
        for key in spec.shortcuts:
            assert key in listed, key
            assert f"`{key}`" in docs, f"docs/gui.md does not list {key}"
    assert "Space" in listed and "`Space` + drag" in docs
