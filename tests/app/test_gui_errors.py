"""Bad files give a message naming the file and the problem; the window stays usable."""
from __future__ import annotations

import shutil

import numpy as np

from core.capture.files import write_frame
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


def test_model_with_deeply_nested_metadata_is_one_message_not_a_stuck_app(qtbot, make_window, small_files, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from core.model.files import METADATA_KEY

    raw, good = small_files
    with safe_open(str(good), "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    nested = tmp_path / "nested.safetensors"
    save_file(tensors, str(nested), metadata={METADATA_KEY: "[" * 100_000 + "]" * 100_000})
    window = make_window(nested, show_dialogs=True)
    qtbot.waitUntil(lambda: window.model_loader.state in ("failed", "missing"), timeout=30_000)
    assert "nested.safetensors" in window.model_indicator.toolTip()
    open_and_wait(qtbot, window, raw)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert not window.is_busy() and not window.status.progress.isVisible()
    assert window.sink.last.level == "error" and "\n" not in window.sink.last.text
    assert window.sink.last_box is not None and window.sink.last_box.isVisible()
    assert exc is not None and window.actions["classify"].isEnabled()


def test_a_result_that_fails_while_drawn_is_reported_and_the_old_map_stays(qtbot, make_window, small_files,
                                                                           monkeypatch):
    import dataclasses

    import app.workers

    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    good = classify_and_wait(qtbot, window)

    def wrong_shape_job(opened, **_kwargs):
        yield app.workers.Progress(0.5, "Classifying")
        bad = dataclasses.replace(good, labels=np.ones((10, 10), np.uint8),
                                  probabilities=np.zeros((10, 10, 5), np.float32), cube=None)
        return app.workers.Classified(bad)

    monkeypatch.setattr(app.workers, "classify_job", wrong_shape_job)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert "does not match" in str(exc) and "does not match" in window.sink.last.text
    assert not window.is_busy() and window.result is good
    assert np.array_equal(window.image_view.labels, good.labels)  # nothing half-drawn


def test_incompatible_model_says_what_to_do(qtbot, make_window, small_files, tmp_path):
    import torch

    from core.model.network import Conv2DNet
    from core.model.files import save_model

    raw, _ = small_files
    other = tmp_path / "other-camera.safetensors"
    torch.manual_seed(0)
    save_model(other, Conv2DNet(25, 5), name="other", class_ids=(1, 2, 3, 4, 5),
               class_names=("h", "t", "v", "a", "d"), profile_id="another-camera")
    window = make_window(other)
    open_and_wait(qtbot, window, raw)
    fail_and_wait(qtbot, window, window.classify)
    text = window.sink.last.text
    assert "other-camera.safetensors" in text and "another-camera" in text
    assert "Settings ▸ Model" in text and not window.is_busy()
