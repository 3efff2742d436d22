"""Remote classification against the real scoring service on loopback, and the local fallback."""
from __future__ import annotations

import numpy as np
import pytest

from app.settings_dialog import SettingsDialog, SettingsState
from remote.scoring_server import local_scoring_server
from tests.support.gui import classify_and_wait, fail_and_wait, open_and_wait

KEY = "gui-test-endpoint-key-123"


@pytest.mark.slow
def test_remote_matches_local_then_stopped_server_falls_back(qtbot, make_window, small_files):
    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    local = classify_and_wait(qtbot, window)
    assert local.source == "local"

    with local_scoring_server(model, key=KEY) as url:
        state = SettingsState.from_settings(window.settings)
        state.endpoint_url, state.endpoint_key, state.use_remote, state.fallback_local = url, KEY, True, True
        window.apply_settings_state(state)

        dialog = SettingsDialog(SettingsState.from_settings(window.settings), window)
        assert dialog.state.endpoint_key == KEY  # read back from the keyring
        with qtbot.waitSignal(dialog.connection_tested, timeout=20_000) as tested:
            dialog.test_connection()
        assert tested.args[0].startswith("OK — ") and tested.args[0].endswith(" ms")

        remote = classify_and_wait(qtbot, window)
        assert remote.source == url
        assert np.array_equal(remote.labels, local.labels)
        assert np.array_equal(window.image_view.overlay_item.image, window.image_view.overlay_rgba())
        assert window.status.source_label.text().startswith(f"Remote: {url} · map of ")
        assert remote.model.sha256 == local.model.sha256

    # The server is gone: a notice, then the local map.
    fallback = classify_and_wait(qtbot, window)
    assert fallback.source == "local"
    assert np.array_equal(fallback.labels, local.labels)
    warnings = [n for n in window.sink.history if n.level == "warning"]
    assert warnings and url in warnings[-1].text and "classified locally" in warnings[-1].text
    # ... and it stays on screen until acknowledged (it used to vanish from the status bar after 8 s).
    assert window.warnings.isVisible() and url in window.warnings.text()
    assert "Remote classification failed" in window.warnings.text()
    assert window.status.source_label.text().startswith("Local · map of ")

    # Without fallback the failure is an error naming the endpoint, and the last map stays.
    window.settings.set("fallback_local", False)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert url.split("/score")[0] in str(exc)
    assert window.sink.last.level == "error" and window.result is fallback
