"""Theatre mode: full screen, only the map, a large legend painted on it, banners kept; warnings persist."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QFontMetrics

from core.classes import class_table
from tests.support.gui import classify_and_wait, grab_array, open_and_wait


def _theatre_window(qtbot, make_window, small_files, size=(1280, 800)):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    window.actions["theatre"].setChecked(True)
    qtbot.wait(50)  # let the full-screen state settle before sizing like a 1280 x 800 screen
    assert window.isFullScreen()
    window.resize(*size)  # the offscreen screen is 800 x 800; the layout must hold at 1280 x 800
    qtbot.waitUntil(lambda: window.width() == size[0] and window.height() == size[1], timeout=30_000)
    qtbot.wait(20)
    return window, result


def test_theatre_hides_the_chrome_and_the_map_fills_the_window(qtbot, make_window, small_files):
    window, _result = _theatre_window(qtbot, make_window, small_files)
    assert window.settings.get("theatre_mode")
    for widget in (window.menuBar(), window.toolbar, window.statusBar(), *window.docks.values()):
        assert widget.isHidden()
    view = window.image_view
    assert view.width() >= 0.98 * window.width() and view.height() >= 0.85 * window.height()
    assert window.banner.isVisible() and "Research use only" in window.banner.text()
    assert QFontMetrics(window.banner.font()).capHeight() >= 17  # the notice stays, readable from afar
    window.actions["theatre"].setChecked(False)
    assert not window.isFullScreen() and window.toolbar.isVisible() and window.docks["Legend"].isVisible()
    assert not window.map_area.theatre.isVisible()


def test_theatre_legend_is_painted_large_on_the_image(qtbot, make_window, small_files):
    window, result = _theatre_window(qtbot, make_window, small_files)
    overlay = window.map_area.theatre
    assert overlay.isVisible() and overlay.swatch_px >= 40
    assert QFontMetrics(overlay.text_font).capHeight() >= 28  # ~8 mm at 2 m on a 24-inch 1080p screen
    assert result.model.name in overlay.model_line and "ms" in overlay.model_line
    pixels = grab_array(window.image_view.viewport())
    table = class_table()
    classes = {k: r for k, r in overlay.swatch_rects.items() if isinstance(k, int)}
    assert set(classes) == {t.id for t in table.classes}
    assert "masked" in overlay.swatch_rects  # the not-measured share is listed, 0.0 % included
    for class_id, rect in classes.items():
        assert rect.width() >= 40 and rect.height() >= 40
        assert window.image_view.viewport().rect().contains(rect)  # fits at 1280 x 800
        block = pixels[rect.top() + 2:rect.bottom() - 1, rect.left() + 2:rect.right() - 1, :3]
        assert block.shape[0] >= 36 and block.shape[1] >= 36
        assert (block == np.array(table.colour(class_id, "thesis"), np.uint8)).all(), class_id
    # A hidden class stays in the large legend, marked hidden: it must not read as "no tumour".
    window.overlay_state.set_class_visible(2, False)
    window.image_view.viewport().repaint()
    assert 2 in overlay.swatch_rects
    texts = {key: text for key, text, _c in overlay.legend_rows()}
    assert texts[2].startswith("Tumour (hidden)") and "%" in texts[2]
    rect = overlay.swatch_rects[2]
    centre = grab_array(window.image_view.viewport())[rect.center().y(), rect.center().x(), :3]
    assert tuple(centre) != table.colour(2, "thesis")  # an empty frame, not a filled swatch


def test_the_large_legend_says_when_the_model_cannot_check_for_out_of_distribution(qtbot, make_window, small_files):
    import dataclasses

    from app.theatre import OOD_UNAVAILABLE_KEY

    window, result = _theatre_window(qtbot, make_window, small_files)
    overlay = window.map_area.theatre
    checked = dataclasses.replace(result, ood_mask=np.zeros(result.labels.shape, bool), ood_fraction=0.0)
    window.trust.show_result(checked)
    assert OOD_UNAVAILABLE_KEY not in {key for key, _t, _c in overlay.legend_rows()}
    window.trust.show_result(dataclasses.replace(result, ood_mask=None, ood_fraction=None))
    window.image_view.viewport().repaint()
    texts = {key: text for key, text, _c in overlay.legend_rows()}
    assert texts[OOD_UNAVAILABLE_KEY] == "Out-of-distribution check unavailable"
    assert OOD_UNAVAILABLE_KEY in overlay.swatch_rects  # painted, inside the view at 1280 x 800
    assert window.image_view.viewport().rect().contains(overlay.swatch_rects[OOD_UNAVAILABLE_KEY])
    window.trust.show_result(checked)  # the next map, from a model that checks: the note goes
    assert OOD_UNAVAILABLE_KEY not in {key for key, _t, _c in overlay.legend_rows()}


def test_warnings_stay_until_acknowledged_and_read_large_in_theatre(qtbot, make_window, small_files):
    window, _result = _theatre_window(qtbot, make_window, small_files)
    banner = window.warnings
    assert banner.isHidden()
    window.show_warning("remote", "Endpoint https://example.org/score failed; this map was made locally")
    window.show_warning("stale", "The map is 12 minutes old")
    qtbot.wait(50)
    assert banner.isVisible() and "Endpoint https://example.org/score failed" in banner.text()
    assert "Stale map" in banner.text()
    assert QFontMetrics(banner.label.font()).capHeight() >= 20
    window.show_warning("remote", "second failure")  # one line per kind: replaced, not stacked
    assert banner.text().count("Remote classification failed") == 1 and "second failure" in banner.text()
    banner.ack_button.click()
    assert banner.isHidden() and banner.warnings == {}


def test_theatre_legend_in_outline_mode_names_the_border(qtbot, make_window, small_files):
    from app.image_view import OUTLINE_COLOUR

    window, _result = _theatre_window(qtbot, make_window, small_files)
    window.overlay_state.outline = True
    window.image_view.viewport().repaint()
    overlay = window.map_area.theatre
    assert list(overlay.swatch_rects)[0] == "outline"
    assert not any(isinstance(key, int) for key in overlay.swatch_rects)  # the border, then the flag layers
    rect = overlay.swatch_rects["outline"]
    pixels = grab_array(window.image_view.viewport())
    block = pixels[rect.top() + 2:rect.bottom() - 1, rect.left() + 2:rect.right() - 1, :3]
    assert (block == np.array([int(OUTLINE_COLOUR[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)).all()


def test_capture_quality_and_out_of_distribution_raise_the_banner(qtbot, make_window, small_files, monkeypatch):
    """The pipeline's quality report and out-of-distribution result (when present) become banner warnings."""
    import dataclasses

    import app.workers
    from core.capture.quality import OOD_WARNING_FRACTION
    from core.capture.quality import assess_quality

    raw, model = small_files
    window = make_window(model)
    real_open, real_classify = app.workers.open_capture_job, app.workers.classify_job

    def open_saturated(*args, **kwargs):
        prepared = yield from real_open(*args, **kwargs)
        capture = prepared.capture
        full = dataclasses.replace(capture, raw=np.full_like(capture.raw, np.iinfo(capture.raw.dtype).max))
        return dataclasses.replace(prepared, quality=assess_quality(full))

    def classify_ood(*args, **kwargs):
        classified = yield from real_classify(*args, **kwargs)
        labels = classified.result.labels
        # every pixel unlike the training spectra, as core.model.inference reports it
        result = dataclasses.replace(classified.result, ood_mask=np.ones(labels.shape, bool), ood_fraction=1.0)
        assert result.ood_fraction > OOD_WARNING_FRACTION
        return dataclasses.replace(classified, result=result)

    monkeypatch.setattr(app.workers, "open_capture_job", open_saturated)
    open_and_wait(qtbot, window, raw)
    assert window.warnings.isVisible() and "Capture quality" in window.warnings.text()
    assert window.opened.capture.capture_id in window.warnings.text()
    monkeypatch.setattr(app.workers, "classify_job", classify_ood)
    classify_and_wait(qtbot, window)
    assert "Out of distribution" in window.warnings.text() and "100 % of the pixels" in window.warnings.text()


def test_theatre_shows_the_running_job(qtbot, make_window, small_files):
    window, _result = _theatre_window(qtbot, make_window, small_files)
    overlay = window.map_area.theatre
    assert overlay.busy_line is None
    with qtbot.waitSignal(window.busy_changed, timeout=30_000, check_params_cb=lambda busy: busy):
        window.classify()
    assert overlay.busy_line  # the status bar is hidden in theatre: progress is shown on the map
    qtbot.waitUntil(lambda: overlay.busy_line is None, timeout=30_000)
