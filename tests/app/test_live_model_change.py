"""Live mode follows the installed model: the next map after an install comes from it, with a banner."""
from __future__ import annotations

from app.live import install_live
from core.capture.files import frame_to_bytes, load_capture
from core.model.files import load_model
from core.model.installed import ModelStore
from tests.support.gui import write_model
from tests.support.live_writer import write_whole


def test_the_next_live_map_uses_a_newly_installed_model_and_says_so(qtbot, make_window, small_files, tmp_path):
    raw, model_path = small_files
    store = ModelStore()
    store.install(model_path)
    capture = load_capture(raw)
    folder = tmp_path / "watch"
    folder.mkdir()
    write_whole(folder / "ID0018CD01.tif", frame_to_bytes(capture.dark, capture.metadata))
    write_whole(folder / "ID0018CW01.tif", frame_to_bytes(capture.white, capture.metadata))
    window = make_window()  # no --model: the installed one
    live = install_live(window)
    assert live.start(folder)

    def arrive(n):
        with qtbot.waitSignal(live.shown, timeout=20_000) as blocker:
            write_whole(folder / f"ID0018C{n:02d}.tif", frame_to_bytes(capture.raw, capture.metadata))
        return blocker.args[0].result.model

    first = arrive(2)
    assert first.sha256 == load_model(model_path).info.sha256
    assert not any("Model changed" in n.text for n in window.sink.history)
    newer = write_model(tmp_path / "newer.safetensors", raw, seed=5)
    store.install(newer)  # as the dialog or `neurohsi model install` would, mid-session
    second = arrive(3)
    assert second.sha256 == load_model(newer).info.sha256 != first.sha256
    assert any(n.text.startswith("Model changed: live maps now come from gui-test v3") for n in window.sink.history)
    live.stop()
