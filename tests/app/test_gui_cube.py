"""Opening a preprocessed cube in the main window: no references, shown and classified, a spectral model too."""
from __future__ import annotations

import torch

from core.model.files import save_model
from core.model.spectral_net import SpectralNet
from tests.support.gui import CLASS_IDS, CLASS_NAMES, classify_and_wait, open_and_wait
from tests.support.nemesis_mat import make_capture, write_cube


def test_open_and_classify_a_nemesis_cube_with_a_spectral_model(qtbot, make_window, tmp_path):
    capture = make_capture("ID0001C01", 1)
    cube_path = write_cube(tmp_path, capture)
    torch.manual_seed(0)
    model = tmp_path / "spectral.safetensors"
    save_model(model, SpectralNet(25, 5), name="gui-spectral", class_ids=CLASS_IDS, class_names=CLASS_NAMES,
               profile_id="thesis-sm5x5-nir")
    window = make_window(model)
    open_and_wait(qtbot, window, cube_path)
    assert window.opened.cube.data.shape == (24, 32, 25)
    assert window.opened.quality.status == "ok" and window.opened.capture.capture_id == cube_path.stem
    result = classify_and_wait(qtbot, window)
    assert result.labels.shape == (24, 32) and result.model.model_kind == "spectral"
    assert window.image_view.overlay_item.image is not None
