"""The screen holds still while a map is made: the image view keeps its size through a classify, the
side panel does not grow when the first map's flag rows appear, the progress text fits on one line."""
from __future__ import annotations

from tests.support.gui import classify_and_wait, open_and_wait


def test_a_classify_resizes_neither_the_image_nor_the_legend_rows(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    window.resize(1280, 800)
    open_and_wait(qtbot, window, raw)
    qtbot.wait(100)
    view, legend = window.image_view, window.legend

    def layout_now():
        return view.size(), window.status.height()

    # Before any map the flag rows are hidden but keep their space (rows laid out, below the classes).
    last_class = max(label.geometry().bottom() for label in legend.percent_labels.values())
    for widgets in legend.flag_rows.values():
        assert not widgets[1].isVisible()
        assert widgets[1].geometry().height() > 0 and widgets[1].geometry().top() > last_class
    seen = []
    window.busy_changed.connect(lambda _busy: seen.append(layout_now()))
    before = layout_now()
    result = classify_and_wait(qtbot, window)
    qtbot.wait(100)  # layouts settle
    after = layout_now()
    shown = [key for key, widgets in legend.flag_rows.items() if widgets[1].isVisible()]
    assert result is not None and shown  # the map brought flag rows (not measured, uncertain, ...)
    assert len(seen) == 2  # busy, then idle
    # The image view and the status bar keep their size through the job and after it.
    assert all(state == before for state in seen) and after == before, (before, seen, after)


def test_the_progress_text_fits_on_one_line(qtbot, make_window):
    window = make_window(None)
    status = window.status
    for text in ("Working", "Classifying locally", "Classifying on the endpoint, then locally"):
        status.set_busy(text, 1.0)
        needed = status.progress.fontMetrics().horizontalAdvance(f"{text} 100%")
        assert status.progress.width() >= min(needed, 360 - 24), text
    height = status.height()
    status.set_busy(None)
    qtbot.wait(50)
    assert status.height() == height and not status.progress.isVisible()
