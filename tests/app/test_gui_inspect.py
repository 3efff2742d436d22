"""Inspect and export: hover spectrum and readout, pinning, ROI mean, exports that reload identically."""
from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from core.labels.maps import read_label_png
from tests.support.gui import classify_and_wait, open_and_wait


def test_hover_updates_spectrum_and_readout(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    row, col = 17, 42
    window.image_view.on_mouse_moved((window.image_view.scene_pos_of(row, col),))
    x, y = window.spectrum.hover_curve.getData()
    order = np.argsort(opened.cube.wavelengths_nm, kind="stable")
    assert np.allclose(y, opened.cube.data[row, col][order])
    assert np.allclose(x, np.asarray(opened.cube.wavelengths_nm)[order])
    text = window.spectrum.readout.text()
    assert text.startswith(f"Row {row}, col {col}")
    class_id = int(result.labels[row, col])
    name = window.legend.table.by_id(class_id).name
    assert name in text and f"{100 * result.probabilities[row, col].max():.0f}%" in text

    window.image_view.on_mouse_moved((window.image_view.scene_pos_of(3, 5),))
    assert np.allclose(window.spectrum.hover_curve.getData()[1], opened.cube.data[3, 5][order])


def test_spectrum_is_drawn_in_wavelength_order(qtbot, make_window, small_files):
    """Mosaic band order is not wavelength order: the curve must not zig-zag back and forth."""
    import dataclasses

    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    shuffled = np.random.default_rng(0).permutation(np.asarray(opened.cube.wavelengths_nm))
    window.spectrum.set_cube(dataclasses.replace(opened.cube, wavelengths_nm=tuple(shuffled)))
    window.spectrum.show_pixel(4, 6)
    x, y = window.spectrum.hover_curve.getData()
    assert (np.diff(x) > 0).all()
    assert np.allclose(y, opened.cube.data[4, 6][np.argsort(shuffled)])


def test_the_empty_spectrum_plot_spans_the_captures_wavelengths(qtbot, make_window, small_files):
    """Before any hover the axis already reads 660-960 nm (it said 0.1-0.9 "nm")."""
    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    wavelengths = np.asarray(opened.cube.wavelengths_nm)
    (x_min, x_max), _ = window.spectrum.plot.viewRange()
    span = wavelengths.max() - wavelengths.min()
    assert abs(x_min - wavelengths.min()) < 0.05 * span and abs(x_max - wavelengths.max()) < 0.05 * span
    window.spectrum.show_pixel(4, 6)  # a spectrum drawn keeps the same axis
    (x_min2, x_max2), _ = window.spectrum.plot.viewRange()
    assert abs(x_min2 - x_min) < 0.05 * span and abs(x_max2 - x_max) < 0.05 * span


def test_clicks_pin_spectra_in_own_colours(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    view = window.image_view
    for n, (row, col) in enumerate(((5, 7), (30, 50)), start=1):
        point = view.mapFromScene(view.scene_pos_of(row, col))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point.x(), point.y()))
        qtbot.waitUntil(lambda n=n: len(window.spectrum.pinned_curves) == n, timeout=30_000)
    curves = window.spectrum.pinned_curves
    order = np.argsort(opened.cube.wavelengths_nm, kind="stable")
    assert np.allclose(curves[1].getData()[1], opened.cube.data[30, 50][order])
    assert curves[0].opts["pen"].color().name() != curves[1].opts["pen"].color().name()
    assert [(p.row, p.col) for p in window.overlay_state.pins] == [(5, 7), (30, 50)]
    assert len(view.pin_item.data) == 2  # a marker per pin on the image
    window.actions["clear_pins"].trigger()
    assert window.spectrum.pinned_curves == [] and window.overlay_state.pins == ()
    assert len(view.pin_item.data) == 0


def test_roi_shows_mean_spectrum_and_pixel_count(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    opened = open_and_wait(qtbot, window, raw)
    window.actions["roi"].setChecked(True)
    roi = window.image_view.roi
    roi.setPos((10, 5))
    roi.setSize((20, 8))
    assert window.image_view.roi_bounds() == (5, 13, 10, 30)
    block, valid = opened.cube.data[5:13, 10:30], opened.cube.valid[5:13, 10:30]
    order = np.argsort(opened.cube.wavelengths_nm, kind="stable")
    assert np.allclose(window.spectrum.roi_curve.getData()[1], block[valid].mean(axis=0)[order], atol=1e-6)
    assert f"{int(valid.sum())} pixels" in window.spectrum.roi_readout.text()
    window.actions["roi"].setChecked(False)
    assert window.spectrum.roi_curve.getData()[1] is None or len(window.spectrum.roi_curve.getData()[1]) == 0


def test_exports_reload_identically(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    assert window.actions["export_npz"].isEnabled()
    labels_png = window.exports.write_labels(tmp_path / "labels.png")
    assert np.array_equal(read_label_png(labels_png), result.labels)
    npz = np.load(window.exports.write_npz(tmp_path / "result.npz"))
    assert np.array_equal(npz["labels"], result.labels)
    assert np.array_equal(npz["probabilities"], result.probabilities)
    assert tuple(npz["class_ids"]) == result.model.class_ids and str(npz["model_sha256"]) == result.model.sha256
    assert str(npz["capture_id"]) == window.opened.capture.capture_id and npz["valid"].shape == result.labels.shape
    overlay = Image.open(window.exports.write_overlay(tmp_path / "overlay.png"))
    assert overlay.width > result.labels.shape[1] * 2  # enlarged map plus the legend panel
    again = window.exports.overlay_image()
    assert np.array_equal(np.asarray(overlay.convert("RGB")), np.asarray(again.convert("RGB")))
