"""Live mode in the real window: a folder watched, maps shown as captures arrive, filmstrip, stale, pause."""
from __future__ import annotations

import numpy as np
import pytest

from app.live import LiveController, install_live
from core.capture.files import frame_to_bytes, load_capture
from core.model.inference import classify
from core.model.files import load_model
from tests.support.live_writer import write_progressively, write_whole
from tests.support.maps import assert_maps_agree


@pytest.fixture
def live_folder(tmp_path, small_files):
    raw, _model = small_files
    capture = load_capture(raw)
    folder = tmp_path / "watch"
    folder.mkdir()
    write_whole(folder / "ID0018CD01.tif", frame_to_bytes(capture.dark, capture.metadata))
    write_whole(folder / "ID0018CW01.tif", frame_to_bytes(capture.white, capture.metadata))
    return folder, capture


def _write_and_wait(qtbot, live, folder, capture, n, *, progressive=False):
    data = frame_to_bytes(capture.raw, capture.metadata)
    with qtbot.waitSignal(live.shown, timeout=20_000) as blocker:
        if progressive:
            write_progressively(folder / f"ID0018C{n:02d}.tif", data, pause_s=0.03)
        else:
            write_whole(folder / f"ID0018C{n:02d}.tif", data)
    return blocker.args[0]


def test_watch_folder_shows_each_new_map_and_keeps_a_filmstrip(qtbot, make_window, small_files, live_folder):
    raw, model_path = small_files
    folder, capture = live_folder
    window = make_window(model_path)
    live = install_live(window)
    assert live.watch_action in window.menus["&File"].actions()
    assert live.start(folder) and live.watching and live.indicator.isVisible()

    first = _write_and_wait(qtbot, live, folder, capture, 2, progressive=True)
    assert first.prepared.capture.capture_id == "ID0018C02"
    assert window.result is first.result and window.opened is first.prepared
    expected = classify(capture, load_model(model_path))  # every core; live runs 1 thread
    assert_maps_agree(window.result.probabilities, window.result.labels, expected.probabilities, expected.labels)
    assert window.windowTitle().endswith("ID0018C02")
    live.indicator.tick()
    text = live.indicator.label.text()
    assert text.startswith("● Live") and "s old" in text and not live.indicator.stale

    second = _write_and_wait(qtbot, live, folder, capture, 3)
    assert live.filmstrip.count() == 2 and live.filmstrip.item(0).text() == "ID0018C03"
    live.filmstrip.itemClicked.emit(live.filmstrip.item(1))  # step back to the first map
    assert window.result is first.result
    assert second.result is not first.result
    history = len(window.sink.history)
    third = _write_and_wait(qtbot, live, folder, capture, 4)
    assert len(window.sink.history) == history  # no note per capture: history stays bounded
    # The GUI thread fell behind: two maps queued, the pipeline already made the newer one.
    shown, strip = [], live.filmstrip.count()
    live.shown.connect(shown.append)
    live._newest = second
    live._on_result(first)
    assert shown == [] and window.result is third.result  # the older one is not painted...
    live._on_result(second)
    assert shown == [second] and window.result is second.result  # ...only the newest
    assert live.filmstrip.count() == strip + 2  # both kept to step back to
    live.stop()
    assert not live.watching and not live.indicator.isVisible()


def test_stale_warning_and_pause_resume(qtbot, make_window, small_files, live_folder):
    _raw, model_path = small_files
    folder, capture = live_folder
    window = make_window(model_path)
    live = LiveController(window, stale_after_s=0.4)
    window.live = live
    assert live.start(folder)
    _write_and_wait(qtbot, live, folder, capture, 2)
    qtbot.waitUntil(lambda: live.indicator.stale, timeout=30_000)
    assert "map may be out of date" in live.indicator.label.text()

    live.indicator.pause_button.click()
    assert live.pipeline.paused and live.indicator.label.text().startswith("⏸ Paused") and not live.indicator.stale
    write_whole(folder / "ID0018C03.tif", frame_to_bytes(capture.raw, capture.metadata))
    write_whole(folder / "ID0018C04.tif", frame_to_bytes(capture.raw, capture.metadata))
    with qtbot.assertNotEmitted(live.shown, wait=500):
        pass
    with qtbot.waitSignal(live.shown, timeout=20_000) as blocker:
        live.indicator.pause_button.click()  # resume: the newest capture is next
    assert blocker.args[0].prepared.capture.capture_id == "ID0018C04"
    live.stop()


def test_no_model_is_said_at_start_not_per_capture(qtbot, make_window, live_folder, tmp_path):
    folder, _capture = live_folder
    window = make_window(tmp_path / "gone.safetensors")
    live = install_live(window)
    assert not live.start(folder)
    assert not live.watching and "model file not found" in window.sink.last.text


def test_filmstrip_keeps_the_last_twenty(qtbot):
    from types import SimpleNamespace

    from app.live.filmstrip import Filmstrip

    strip = Filmstrip()
    qtbot.addWidget(strip)
    rgb = np.zeros((40, 60, 3), np.uint8)
    for k in range(25):
        live = SimpleNamespace(prepared=SimpleNamespace(capture=SimpleNamespace(capture_id=f"C{k}")),
                               result=SimpleNamespace(model=SimpleNamespace(label="m"), source="local"))
        strip.add(live, rgb)
    assert strip.count() == 20 and len(strip.entries) == 20
    assert strip.item(0).text() == "C24" and strip.item(19).text() == "C5"
    with qtbot.waitSignal(strip.chosen) as chosen:
        strip.itemClicked.emit(strip.item(19))
    assert chosen.args[0].prepared.capture.capture_id == "C5"


def test_gui_live_mode_honours_the_remote_deadline_setting(qtbot, make_window, small_files, monkeypatch):
    """Live mode asks the endpoint with the user's deadline, as a single capture does (one classifier)."""
    import remote.remote_or_local as remote_or_local

    raw, model_path = small_files
    window = make_window(model_path)
    live = install_live(window)
    window.settings.set("use_remote", True)
    window.settings.set("endpoint_url", "http://127.0.0.1:9/score")
    window.settings.set("remote_deadline_s", 7)
    seen = []

    def fake(prepared, **kwargs):
        seen.append(kwargs)
        raise remote_or_local.RemoteError(None, "no endpoint in this test")

    monkeypatch.setattr(remote_or_local, "classify_remote_or_local", fake)
    classify = live._classifier()
    with pytest.raises(remote_or_local.RemoteError):
        classify(object())
    assert seen[0]["policy"].deadline_s == 7 and seen[0]["policy"] == window.remote_policy()
    assert seen[0]["endpoint"].url == "http://127.0.0.1:9/score"


def test_unusable_live_capture_keeps_the_last_good_map_dimmed_with_a_banner(qtbot, make_window, small_files, live_folder):
    """Live mode runs the same checks: a mismatched exposure warns, a saturated frame makes no map."""
    from dataclasses import replace

    _raw, model_path = small_files
    folder, capture = live_folder
    window = make_window(model_path)
    live = LiveController(window, stale_after_s=60)
    window.live = live
    assert live.start(folder)
    mismatched = replace(capture.metadata, exposure_us=(capture.metadata.exposure_us or 41000) + 9000)
    with qtbot.waitSignal(live.shown, timeout=20_000):
        write_whole(folder / "ID0018C02.tif", frame_to_bytes(capture.raw, mismatched))
    assert "exposure" in window.warnings.text() and "ID0018C02" in window.warnings.text()
    good_labels = window.image_view.labels
    assert good_labels is not None and window.image_view.view.opacity() == 1.0
    with qtbot.waitSignal(live.shown, timeout=20_000):
        write_whole(folder / "ID0018C03.tif", frame_to_bytes(np.full_like(capture.raw, 1023), capture.metadata))
    assert window.opened.capture.capture_id == "ID0018C02"  # the last good map stays...
    assert window.image_view.labels is good_labels and window.image_view.view.opacity() < 0.5  # ...dimmed
    assert "ID0018C03 is unusable" in window.warnings.text() and "saturated" in window.warnings.text()
    with qtbot.waitSignal(live.shown, timeout=20_000):
        write_whole(folder / "ID0018C04.tif", frame_to_bytes(capture.raw, capture.metadata))
    assert window.opened.capture.capture_id == "ID0018C04" and window.image_view.view.opacity() == 1.0
    assert "unusable" not in window.warnings.text() and "ID0018C02" not in window.warnings.text()
    live.stop()


def test_stale_live_map_raises_a_banner_with_its_age_in_theatre_too(qtbot, make_window, small_files, live_folder):
    _raw, model_path = small_files
    folder, capture = live_folder
    window = make_window(model_path)
    window.settings.set("live_stale_after_s", 1)
    live = LiveController(window)
    window.live = live
    assert live.indicator.stale_after_s == 1.0  # from the setting
    assert live.start(folder)
    _write_and_wait(qtbot, live, folder, capture, 2)
    window.actions["theatre"].setChecked(True)
    qtbot.waitUntil(lambda: "Stale map" in window.warnings.text(), timeout=30_000)
    assert window.warnings.isVisible() and "s old" in window.warnings.text()
    window.warnings.ack_button.click()
    qtbot.wait(600)
    assert window.warnings.isHidden()  # acknowledged: not again until the next map
    _write_and_wait(qtbot, live, folder, capture, 3)
    qtbot.waitUntil(lambda: "Stale map" in window.warnings.text(), timeout=30_000)
    _write_and_wait(qtbot, live, folder, capture, 4)  # a new map clears the banner...
    assert "Stale map" not in window.warnings.text()
    qtbot.waitUntil(lambda: "Stale map" in window.warnings.text(), timeout=30_000)  # ...until it is stale again
    window.actions["theatre"].setChecked(False)
    live.stop()
