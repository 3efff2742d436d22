"""Open, classify, overlay: opacity, palette, class toggles, contour and confidence views."""
from __future__ import annotations

import re

import numpy as np

from app.overlay import boundaries, heat_rgba
from core.capture.files import load_capture
from core.classes import class_table
from core.model.inference import classify
from core.model.files import load_model
from tests.support.gui import classify_and_wait, grab_array, open_and_wait


def test_open_shows_rgb_then_classify_shows_overlay(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    assert np.array_equal(window.image_view.rgb_item.image, opened.rgb)
    assert window.image_view.overlay_item.image is None
    assert window.metadata.values["capture"] == opened.capture.capture_id
    assert "Research use only" in window.banner.text()
    qtbot.waitUntil(lambda: re.fullmatch(r"Opened in \d+ ms", window.status.timings_label.text()) is not None,
                    timeout=30_000)  # wall time from the click to the image painted

    result = classify_and_wait(qtbot, window)
    expected = classify(load_capture(raw), load_model(model))
    assert np.array_equal(result.labels, expected.labels)
    shown = window.image_view.overlay_item.image
    assert shown.shape == expected.labels.shape + (4,)
    lut = class_table().lut("thesis")
    assert np.array_equal(shown[..., :3], lut[expected.labels, :3])
    assert result.model.sha256[:12] in window.status.model_label.text()
    assert "Local" in window.status.source_label.text()
    assert "map of " in window.status.source_label.text()  # when the map on screen was made
    # The time shown is the wall time from the click to the painted map, never less than inference alone.
    qtbot.waitUntil(lambda: window.status.timings_label.text().startswith("Map in"), timeout=30_000)
    waited_ms = float(window.status.timings_label.text().removeprefix("Map in ").removesuffix(" ms"))
    assert waited_ms >= 1000 * result.timings_s["infer"] - 1
    assert "infer" in window.status.timings_label.toolTip()
    percent = window.legend.percent_labels[1].text()
    assert percent == f"{100 * (expected.labels == 1).mean():.1f} %"


def test_opacity_and_palette_change_rendered_pixels(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    classify_and_wait(qtbot, window)
    view = window.image_view
    window.overlay_state.opacity = 20
    faint = grab_array(view)
    window.view_controls.opacity_slider.setValue(90)  # the slider writes the state, the view follows
    assert window.overlay_state.opacity == 90 and window.settings.get("opacity") == 90
    strong = grab_array(view)
    assert np.abs(faint.astype(int) - strong.astype(int)).sum() > 0

    window.overlay_state.palette = "colourblind"
    assert window.view_controls.palette_combo.currentData() == "colourblind"
    colourblind = grab_array(view)
    assert np.abs(colourblind.astype(int) - strong.astype(int)).sum() > 0
    lut = class_table().lut("colourblind")
    assert np.array_equal(view.overlay_item.image[..., :3], lut[window.result.labels, :3])
    assert window.settings.get("palette") == "colourblind"


def test_class_toggle_hides_class(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    labels = classify_and_wait(qtbot, window).labels
    present = [c for c in np.unique(labels) if c != 0]
    hide = int(max(present, key=lambda c: (labels == c).sum()))
    before = grab_array(window.image_view)
    window.legend.set_class_visible(hide, False)
    assert window.overlay_state.hidden == {hide}
    alpha = window.image_view.overlay_item.image[..., 3]
    assert (alpha[labels == hide] == 0).all()
    assert (alpha[(labels != hide) & (labels != 0)] == 255).all()
    assert np.abs(grab_array(window.image_view).astype(int) - before.astype(int)).sum() > 0
    window.overlay_state.set_class_visible(hide, True)  # the state drives the checkbox and the view
    assert window.legend.checks[hide].isChecked()
    assert (window.image_view.overlay_item.image[..., 3][labels == hide] == 255).all()


def test_contour_confidence_and_probability_views(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    window.actions["contour"].setChecked(True)
    alpha = window.image_view.overlay_item.image[..., 3]
    assert np.array_equal(alpha > 0, boundaries(result.labels))
    assert window.overlay_state.contour
    window.overlay_state.contour = False
    assert not window.actions["contour"].isChecked()
    assert (window.image_view.overlay_item.image[..., 3][result.labels != 0] == 255).all()

    combo = window.view_controls.mode_combo
    combo.setCurrentIndex(combo.findText("Confidence"))
    assert window.overlay_state.view_mode == "confidence"
    assert np.array_equal(window.image_view.overlay_item.image,
                          heat_rgba(result.probabilities.max(axis=-1), valid=result.labels != 0))
    window.overlay_state.set_view_mode("probability", 2)
    assert combo.currentText() == "P(Tumour)"
    assert np.array_equal(window.image_view.overlay_item.image,
                          heat_rgba(result.probabilities[..., 1], valid=result.labels != 0))


def test_new_capture_clears_the_map_and_its_model_credit(qtbot, make_window, small_files, second_small_raw):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    assert result.model.name in window.status.model_label.text()
    open_and_wait(qtbot, window, second_small_raw)
    # No stale map over the new image, and no model credited with a map that is not there.
    assert window.result is None and window.image_view.labels is None
    assert window.status.model_label.text() == "Not classified yet"
    assert window.status.source_label.text() == ""
