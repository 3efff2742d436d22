"""The trust checks in the main window: quality banner, "Show anyway" with watermark, hatched OOD pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.capture.files import load_capture
from core.model.network import Conv2DNet
from core.model.files import save_model
from core.spectral.ood import fit_ood_from_cubes
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from core.output.trust_render import OOD_FILL, OOD_HATCH
from tests.support.gui import CLASS_IDS, CLASS_NAMES, classify_and_wait, open_and_wait, write_capture


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A good and a saturated small capture, and a model whose file describes its training spectra."""
    folder = tmp_path_factory.mktemp("trust")
    profile = small_profile(40, 60)
    good = generate_capture(seed=3, profile=profile)
    raw = write_capture(folder / "good", good)
    saturated = generate_capture(seed=3, profile=profile)
    object.__setattr__(saturated, "raw", np.full_like(saturated.raw, 1023))
    bad = write_capture(folder / "bad", saturated)
    training = generate_capture(seed=5, profile=profile)
    cube = preprocess_capture(training.to_capture())
    torch.manual_seed(0)
    model = folder / "model.safetensors"
    save_model(
        model, Conv2DNet(25, 5), name="gui-trust", class_ids=CLASS_IDS, class_names=CLASS_NAMES,
        profile_id=preprocess_capture(load_capture(raw)).profile_id,
        ood=fit_ood_from_cubes([(cube.data, training.labels, cube.valid)]).to_dict(),
    )
    return raw, bad, model


def test_ood_pixels_are_hatched_grey_with_a_legend_entry(qtbot, make_window, files):
    raw, _, model = files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    result = classify_and_wait(qtbot, window)
    assert result.ood_mask is not None
    hatch = window.trust.ood_item.image
    assert hatch.shape == result.ood_mask.shape + (4,)
    np.testing.assert_array_equal(hatch[..., 3] > 0, result.ood_mask)
    if result.ood_mask.any():
        assert {tuple(c) for c in hatch[result.ood_mask][:, :3]} <= {OOD_FILL, OOD_HATCH}
    _swatch, name, percent = window.legend.flag_rows["ood"]
    assert name.isVisible() and name.text() == "out of distribution"
    assert percent.text() == f"{100 * result.ood_fraction:.1f} %" or result.masked_mask.any()
    assert window.image_view.overlay_item.image is not None  # a usable capture keeps its map


def test_unusable_capture_shows_reason_then_map_on_show_anyway(qtbot, make_window, files):
    _, bad, model = files
    window = make_window(model)
    open_and_wait(qtbot, window, bad)
    classify_and_wait(qtbot, window)
    assert "saturated" in window.warnings.text() and window.warnings.isVisible()
    assert window.image_view.labels is None and window.image_view.overlay_item.image is None  # no map by default
    assert window.trust.show_anyway.isVisible() and not window.trust.watermark.isVisible()
    window.trust.show_anyway.click()
    assert window.image_view.labels is not None and window.trust.watermark.isVisible()
    assert "UNUSABLE" in window.trust.watermark.text()
    image = np.asarray(window.exports.overlay_image().convert("RGB")).astype(int)
    red = (image[..., 0] > 150) & (image[..., 1] < 80) & (image[..., 2] < 80)
    assert red.mean() > 0.02  # the export carries the watermark too


def test_capture_panel_shows_the_calibration_used(qtbot, make_window, files):
    raw, _, model = files
    window = make_window(model)
    open_and_wait(qtbot, window, raw)
    text = window.metadata.values["calibration"]
    assert text.startswith("model-level calibration: SCM of profile synthetic-small")
    assert "geometry from metadata" in text and "wavelengths from the camera" in text
