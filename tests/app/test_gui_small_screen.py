"""A short screen (the offscreen one is 800 x 800; theatre PCs are often 1280 x 800): the window fits it."""
from __future__ import annotations

from tests.support.gui import open_and_wait


def test_side_panels_share_a_tab_and_the_window_fits_a_short_screen(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    area = window.screen().availableGeometry()
    assert area.height() < 900  # the case this test is about
    # Stacked, legend + spectrum + capture need more height than the screen has and the status bar,
    # which names the model, would end up below its bottom edge.
    assert window.docks["Capture"] in window.tabifiedDockWidgets(window.docks["Spectrum"])
    assert window.minimumSizeHint().height() <= area.height() - 40  # room for the title bar
    assert window.frameGeometry().height() <= area.height()
    assert window.statusBar().isVisible() and window.status.isVisible()
