"""Issue 23 in real widgets: not-measured pixels, warnings bound to their capture, theatre legend and
watermark, status texts, one legend model for screen and export, Edit > Preferences, window geometry."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QFontMetrics

from core.capture.files import load_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.gui import classify_and_wait, open_and_wait, write_capture, write_model


def _saturated_band(synthetic, cols: slice):
    """``synthetic`` with pattern positions 7 and 12 at full scale over cube columns ``cols``: about 4 % of
    the raw frame saturated, a "warning" capture."""
    raw = synthetic.raw.copy()
    pw, ph = synthetic.profile.pattern_wh
    (ox, oy) = synthetic.profile.offset_xy
    h, w, _ = synthetic.profile.cube_shape
    for row in (1, 2):
        raw[np.ix_(oy + ph * np.arange(h) + row, ox + pw * np.arange(w)[cols] + 2)] = 1023
    object.__setattr__(synthetic, "raw", raw)
    return synthetic


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("i23")
    profile = small_profile(40, 60)
    clean = write_capture(folder / "clean", generate_capture(seed=3, profile=profile), name="ID0001C01")
    band = write_capture(folder / "band", _saturated_band(generate_capture(seed=4, profile=profile), slice(20, 50)),
                         name="ID0002C01")
    flat = generate_capture(seed=5, profile=profile)
    object.__setattr__(flat, "raw", np.full_like(flat.raw, 1023))
    saturated = write_capture(folder / "sat", flat, name="ID0003C01")
    return {"clean": clean, "band": band, "saturated": saturated,
            "model": write_model(folder / "m.safetensors", clean)}


def test_clipped_band_is_not_measured_on_screen_and_in_the_export(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["band"])
    result = classify_and_wait(qtbot, window)
    assert (result.labels[:, 20:50] == 0).all() and result.masked_fraction >= 30 / 60
    # the flag layer is drawn there, and the legend has its own row with the share
    drawn = window.trust.flag_items["masked"].image
    assert (drawn[:, 20:50, 3] == 255).all() and (drawn[:, :20, 3] == 0).all()
    _swatch, name, percent = window.legend.flag_rows["masked"]
    assert name.isVisible() and name.text() == "not measured"
    assert percent.text() == f"{100 * result.masked_fraction:.1f} %"
    # one legend model: the export lists exactly the rows the screen shows
    assert [(r.key, r.text()) for r in window.exports.legend_rows()] == [(r.key, r.text()) for r in window.legend.rows]
    shown = {r.key: r.fraction for r in window.legend.rows}
    assert sum(shown.values()) == pytest.approx(1.0)
    # the hovered spectrum says so
    assert "not measured" in window.spectrum.describe(5, 25)


def test_warnings_name_their_capture_and_go_when_another_is_opened(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["band"])
    classify_and_wait(qtbot, window)
    assert window.warnings.isVisible() and "saturated" in window.warnings.text()
    assert "[ID0002C01," in window.warnings.text()  # still named after classifying
    window.spectrum.show_pixel(3, 3)
    assert window.spectrum.readout.text().startswith("Row 3")
    open_and_wait(qtbot, window, captures["clean"])
    assert window.warnings.isHidden() and "saturated" not in window.warnings.text()
    assert not window.spectrum.readout.text().startswith("Row")  # no readout of the previous capture
    window.show_warning("remote", "Endpoint failed; this map was made locally")
    assert "[ID0001C01," in window.warnings.text()
    window.settings.set("endpoint_url", "")
    from app.settings_dialog import SettingsState

    window.apply_settings_state(SettingsState.from_settings(window.settings))
    assert "Remote" not in window.warnings.text()  # the endpoint is gone: so is its warning


def test_unusable_capture_in_theatre_after_acknowledge_stays_marked(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["saturated"])
    classify_and_wait(qtbot, window)
    qtbot.wait(50)
    assert window.status.timings_label.text() == "No map shown: capture unusable"  # never "Map in N ms"
    assert "unusable" in window.map_area.theatre.model_line
    window.actions["theatre"].setChecked(True)
    window.resize(1280, 800)
    qtbot.wait(50)
    window.trust.show_anyway.click()
    window.warnings.ack_button.click()
    qtbot.wait(50)
    mark = window.trust.watermark
    assert mark.isVisible() and "UNUSABLE" in mark.text() and "saturated" in mark.text()
    assert QFontMetrics(mark.font()).capHeight() >= 20  # legible at 2 m
    # never under the theatre model line (top left plate, about 60 px) nor the bottom-left legend
    assert mark.geometry().top() > 80
    assert "UNUSABLE" in window.map_area.theatre.model_line
    rows = {key: text for key, text, _c in window.map_area.theatre.legend_rows()}
    assert rows["masked"].startswith("not measured 100.0 %")  # a saturated frame is not "100 % tumour"
    window.actions["theatre"].setChecked(False)


def test_leaving_theatre_restores_the_window(qtbot, make_window, captures):
    window = make_window(captures["model"])
    qtbot.wait(50)
    before = window.geometry()
    window.actions["theatre"].setChecked(True)
    qtbot.waitUntil(window.isFullScreen, timeout=30_000)
    window.actions["theatre"].setChecked(False)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=30_000)
    qtbot.wait(600)  # past the late re-checks: it must not go back to full screen or grow
    assert not window.isFullScreen()
    assert window.geometry().size() == before.size() and window.statusBar().isVisible()


def test_preferences_in_the_edit_menu_and_view_mode_in_sight_at_1280(qtbot, make_window, captures):
    window = make_window(captures["model"])
    edit = window.menus["&Edit"]
    assert window.actions["settings"] in edit.actions() and "Preferences" in window.actions["settings"].text()
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280, timeout=30_000)
    qtbot.wait(50)
    combo = window.view_controls.mode_combo
    assert combo.isVisible() and window.toolbar.rect().contains(combo.geometry())


def test_colour_bar_sits_beside_the_map(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["clean"])
    classify_and_wait(qtbot, window)
    window.actions["theatre"].setChecked(True)
    window.overlay_state.set_view_mode("confidence")
    qtbot.wait(50)
    bar, view = window.map_area.colour_bar, window.image_view
    assert bar.isVisible()
    bar_left = bar.mapTo(window, bar.rect().topLeft()).x()
    view_right = view.mapTo(window, view.rect().topRight()).x()
    assert bar_left > view_right  # beside the image, not over it
    window.actions["theatre"].setChecked(False)


def test_featureless_capture_gets_no_tissue_map(qtbot, make_window, captures, tmp_path):
    """A grey card: unusable, every pixel not measured (it once gave a 100 % tumour map, quality ok)."""
    capture = load_capture(captures["clean"])
    grey = generate_capture(seed=3, profile=small_profile(40, 60))
    card = np.rint(capture.dark + 0.5 * (capture.white.astype(float) - capture.dark)).astype(np.uint16)
    object.__setattr__(grey, "raw", card)
    raw = write_capture(tmp_path, grey, name="ID0009C01")
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, raw)
    assert "no tissue" in window.warnings.text()
    result = classify_and_wait(qtbot, window)
    assert result.quality.status == "unusable" and result.masked_fraction == 1.0
    assert window.image_view.labels is None  # no map by default


def test_stale_threshold_is_a_setting_in_preferences_and_capture_panel_counts_measured(qtbot, make_window, captures):
    window = make_window(captures["model"])
    dialog = window.open_settings()
    dialog.stale_spin.setValue(25)
    dialog.accept()
    assert window.settings.get("live_stale_after_s") == 25
    open_and_wait(qtbot, window, captures["band"])
    assert "not measured" in window.metadata.values["valid"] and not window.metadata.values["valid"].startswith("100")


def test_watermark_is_as_tall_as_its_text_and_under_the_model_line(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["saturated"])
    classify_and_wait(qtbot, window)
    window.trust.show_anyway.click()
    window.actions["theatre"].setChecked(True)
    window.resize(1280, 800)
    qtbot.wait(200)
    mark, viewport = window.trust.watermark, window.image_view.viewport()
    # as tall as its wrapped text: it once took a band taller than the map (506 px in a 463 px view)
    assert mark.geometry().bottom() < viewport.height() and mark.height() < 0.8 * viewport.height()
    assert mark.geometry().top() >= 90  # under the theatre model line
    window.actions["theatre"].setChecked(False)


def test_uncertain_pixels_are_a_flag_layer_with_a_legend_share(qtbot, make_window, captures, monkeypatch):
    """Whatever ``uncertain_mask`` a result carries (core.model.uncertainty sets it at the settings'
    threshold) is drawn hatched there, with its share in the legend dock, the theatre legend and the export."""
    import dataclasses

    import core.model.uncertainty

    def top_rows_uncertain(result, threshold):
        mask = np.zeros(result.labels.shape, bool)
        mask[:10] = True
        return dataclasses.replace(result, uncertain_mask=mask, uncertain_fraction=float(mask.mean()))

    monkeypatch.setattr(core.model.uncertainty, "with_uncertainty", top_rows_uncertain)
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["clean"])
    result = classify_and_wait(qtbot, window)
    drawn = window.trust.flag_items["uncertain"].image
    assert (drawn[10:, :, 3] == 0).all() and (drawn[:10, :, 3] > 0).any()
    _swatch, name, percent = window.legend.flag_rows["uncertain"]
    assert name.isVisible() and percent.text() == f"{100 * result.uncertain_fraction:.1f} %"
    assert "uncertain" in {row.key for row in window.exports.legend_rows()}
    assert "uncertain" in {key for key, _t, _c in window.map_area.theatre.legend_rows()}


def test_status_timing_is_never_cut_on_a_narrow_window(qtbot, make_window, captures):
    window = make_window(captures["model"])
    open_and_wait(qtbot, window, captures["clean"])
    classify_and_wait(qtbot, window)
    window.resize(640, 600)
    qtbot.wait(100)
    timing = window.status.timings_label
    assert timing.text().startswith("Map in") and timing.text().endswith(" ms")
    assert timing.width() >= timing.fontMetrics().horizontalAdvance(timing.text())  # whole, not "…1887 m"
    model = window.status.model_label
    assert model.toolTip().startswith("Model: ")  # the full text when it has to give way
