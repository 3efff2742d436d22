"""Bad files give a message naming the file and the problem; the window stays usable."""
from __future__ import annotations

import shutil

import numpy as np

from core.capture_io import write_frame
from tests.support.gui import classify_and_wait, fail_and_wait, open_and_wait


def _assert_box_names(window, *needles):
    box = window.sink.last_box
    assert box is not None and box.isVisible()  # shown with open(): the event loop kept running
    for needle in needles:
        assert needle in box.text(), box.text()
        assert needle in window.sink.last.text


def test_bad_captures_keep_the_open_one(qtbot, make_window, small_files, tmp_path):
    raw, model = small_files
    window = make_window(model, show_dialogs=True)
    opened = open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)

    not_tiff = tmp_path / "ID0002C01.tif"
    not_tiff.write_text("this is not an image")
    fail_and_wait(qtbot, window, lambda: window.open_capture(not_tiff))
    _assert_box_names(window, str(not_tiff), "not a TIFF")
    window.sink.last_box.close()

    lonely = tmp_path / "lonely" / "ID0003C01.tif"
    lonely.parent.mkdir()
    shutil.copy(raw, lonely)
    fail_and_wait(qtbot, window, lambda: window.open_capture(lonely))
    _assert_box_names(window, str(lonely), "dark reference ID0003CD01.tif not found")

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("ID0004C01.tif", "ID0004CW01.tif"):
        shutil.copy(raw, wrong / name)
    write_frame(wrong / "ID0004CD01.tif", np.zeros((10, 12), np.uint16))
    fail_and_wait(qtbot, window, lambda: window.open_capture(wrong / "ID0004C01.tif"))
    _assert_box_names(window, "ID0004CD01.tif", "differs from raw frame")

    stack = tmp_path / "stack" / "ID0005C01.tif"
    stack.parent.mkdir()
    import tifffile

    tifffile.imwrite(stack, np.zeros((3, 20, 30, 2), np.uint16))
    fail_and_wait(qtbot, window, lambda: window.open_capture(stack))
    _assert_box_names(window, str(stack), "2-D frame")

    small = tmp_path / "small"
    small.mkdir()
    for name in ("ID0006C01.tif", "ID0006CD01.tif", "ID0006CW01.tif"):
        write_frame(small / name, np.full((12, 14), 100, np.uint16))
    fail_and_wait(qtbot, window, lambda: window.open_capture(small / "ID0006C01.tif"))
    _assert_box_names(window, "ID0006C01.tif", "too small")

    # Nothing already open was lost, and the window still works.
    assert window.opened is opened and window.result is result
    assert np.array_equal(window.image_view.rgb_item.image, opened.rgb)
    assert not window.is_busy() and window.actions["classify"].isEnabled()
    assert classify_and_wait(qtbot, window).labels.shape == result.labels.shape


def test_corrupt_model_names_the_file(qtbot, make_window, small_files, second_small_raw, tmp_path):
    raw, _model = small_files
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x80\x04not a model at all")
    window = make_window(corrupt, show_dialogs=True)
    opened = open_and_wait(qtbot, window, raw)
    fail_and_wait(qtbot, window, window.classify)
    _assert_box_names(window, str(corrupt), "pickle")
    assert window.sink.last_box.detailedText()  # details on request
    assert window.opened is opened and window.result is None
    # Still usable: another capture opens.
    assert open_and_wait(qtbot, window, second_small_raw).capture.capture_id == "ID0007C02"


def test_missing_model_and_classify_without_capture(qtbot, make_window, small_files, tmp_path):
    raw, _ = small_files
    missing = tmp_path / "nowhere.safetensors"
    window = make_window(missing)
    window.classify()
    assert "Open a capture" in window.sink.last.text and not window.is_busy()
    open_and_wait(qtbot, window, raw)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert str(missing) in str(exc) and "not found" in window.sink.last.text
