"""An endpoint's answer is checked before it is drawn or saved, in the GUI and the CLI alike.

The real scoring service serves a model whose class table has an id this app does not
know (9): its answers are rejected, and the capture falls back to local when allowed.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app.cli.main import main
from core.model.network import Conv2DNet
from core.model.files import save_model
from remote.scoring_server import local_scoring_server
from tests.support.gui import CLASS_NAMES, classify_and_wait, fail_and_wait, open_and_wait


@pytest.fixture(scope="module")
def stranger_endpoint(small_files, tmp_path_factory):
    """URL of a real scoring service whose model declares class ids (1, 2, 3, 4, 9)."""
    from core.capture.files import load_capture
    from core.spectral.chain import preprocess_capture

    raw, _model = small_files
    path = tmp_path_factory.mktemp("stranger") / "stranger.safetensors"
    torch.manual_seed(1)
    save_model(path, Conv2DNet(25, 5), name="stranger", class_ids=(1, 2, 3, 4, 9), class_names=CLASS_NAMES,
               profile_id=preprocess_capture(load_capture(raw)).profile_id, version="1")
    with local_scoring_server(path) as url:
        yield url


@pytest.mark.slow
def test_cli_rejects_the_answer_and_falls_back_only_when_told(small_files, stranger_endpoint, tmp_path, capsys):
    raw, model = small_files
    code = main(["classify", str(raw), "--endpoint", stranger_endpoint, "-o", str(tmp_path / "map.png")])
    _out, err = capsys.readouterr()
    assert code != 0 and not (tmp_path / "map.png").exists()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "answer rejected" in lines[0] and "[9]" in lines[0], err

    code = main(["classify", str(raw), "--endpoint", stranger_endpoint, "--fallback-local", "--model", str(model),
                 "-o", str(tmp_path / "map.png")])
    _out, err = capsys.readouterr()
    assert code == 0 and (tmp_path / "map.png").exists()
    assert "answer rejected" in err and "classified locally" in err


@pytest.mark.slow
def test_gui_draws_the_local_map_and_says_why(qtbot, make_window, small_files, stranger_endpoint):
    from app.settings_dialog import SettingsState

    raw, model = small_files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    state = SettingsState.from_settings(window.settings)
    state.endpoint_url, state.use_remote, state.fallback_local = stranger_endpoint, True, True
    window.apply_settings_state(state)
    result = classify_and_wait(qtbot, window)
    assert result.source == "local" and set(np.unique(result.labels)) <= {0, 1, 2, 3, 4, 5}
    assert window.warnings.isVisible() and "answer rejected" in window.warnings.text()
    assert stranger_endpoint in window.warnings.text()

    window.settings.set("fallback_local", False)
    exc = fail_and_wait(qtbot, window, window.classify)
    assert "answer rejected" in str(exc) and window.result is result  # nothing drawn from the bad answer
    assert not window.is_busy()
