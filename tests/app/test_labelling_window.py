"""The labelling mode inside the main window: Labels menu, labels beside the capture, start from prediction."""
from __future__ import annotations

import json

import numpy as np

from app.labelling.integration import install_labelling, labels_folder
from core.labels.maps import read_label_png
from tests.support.gui import classify_and_wait, open_and_wait


def test_label_the_open_capture_from_its_prediction_and_save(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window(model)
    controller = install_labelling(window)
    assert "&Labels" in window.menus
    assert controller.open_labelling() is None  # nothing open yet: a note, no window
    assert "Open a capture first" in window.sink.last.text
    opened = open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    controller.label_action.trigger()
    widget = controller.widget
    assert widget is not None and controller.labelling_window.isVisible()
    folder = labels_folder(raw, opened.capture.capture_id)
    assert widget.session.folder == folder and folder == raw.parent / opened.capture.capture_id
    assert widget.session.editor.shape == result.labels.shape
    assert np.array_equal(widget.canvas.rgb_item.image, opened.rgb)
    assert np.array_equal(widget.session.editor.valid, opened.cube.valid)  # fills stop at invalid pixels
    widget.threshold_spin.setValue(0.0)
    widget.start_from_prediction()
    assert np.array_equal(widget.session.editor.labels, result.labels)
    assert widget.save() == folder / "labels.png"
    assert np.array_equal(read_label_png(folder / "labels.png"), result.labels)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["labels"]["prelabel_model"] == {"name": "gui-test", "version": "3", "sha256": result.model.sha256}
    assert meta["labels"]["from_prediction"] is True
    widget.shutdown()


def test_labels_folder_rule(tmp_path):
    assert labels_folder(tmp_path / "ID0001C01" / "raw.tif", "ID0001C01") == tmp_path / "ID0001C01"
    assert labels_folder(tmp_path / "ID0001C01.tif", "ID0001C01") == tmp_path / "ID0001C01"


def test_display_name_is_a_setting_used_for_the_next_capture(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    controller = install_labelling(window)
    open_and_wait(qtbot, window, raw)
    widget = controller.open_labelling()
    widget.author_edit.setText("Dr. Display")
    assert window.settings.get("labeller_name") == "Dr. Display"
    assert widget.session.author == "Dr. Display"
    widget.close_session()
    widget.author_edit.clear()
    widget = controller.open_labelling()
    assert widget.session.author == "Dr. Display" and widget.author_edit.text() == "Dr. Display"
    widget.shutdown()
