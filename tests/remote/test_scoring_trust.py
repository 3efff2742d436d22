"""The scoring service answers with the capture's quality and out-of-distribution mask (real server, loopback)."""
from __future__ import annotations

import numpy as np
import pytest

from core.capture.files import Capture
from core.model.inference import classify
from core.model.files import load_model, save_model
from core.spectral.ood import fit_ood_from_cubes
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from remote.scoring_client import ScoringClient
from remote.scoring_server import local_scoring_server
from tests.support.scoring import CLASS_IDS, CLASS_NAMES


@pytest.fixture(scope="module")
def captures():
    profile = small_profile(24, 32)
    return [generate_capture(seed=s, profile=profile) for s in range(3)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, captures):
    import torch

    from core.model.network import Conv2DNet

    items = []
    for c in captures[:2]:
        cube = preprocess_capture(c.to_capture())
        items.append((cube.data, c.labels, cube.valid))
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    save_model(
        path, Conv2DNet(25, 5), name="trust", class_ids=CLASS_IDS, class_names=CLASS_NAMES,
        profile_id="synthetic-small", ood=fit_ood_from_cubes(items).to_dict(),
    )
    return path


@pytest.fixture(scope="module")
def service(model_path):
    with local_scoring_server(model_path) as url:
        yield url


def test_answer_carries_quality_and_ood_like_local(service, model_path, captures):
    capture = captures[2].to_capture()
    remote = ScoringClient(service).classify_capture(capture)
    local = classify(capture, load_model(model_path))
    assert remote.quality == local.quality and remote.quality.status in ("ok", "warning")
    np.testing.assert_array_equal(remote.ood_mask, local.ood_mask)
    assert remote.ood_fraction == pytest.approx(local.ood_fraction, abs=1e-6)


def test_unusable_capture_is_answered_with_its_reason(service, captures):
    good = captures[2]
    saturated = Capture(np.full_like(good.raw, 1023), good.dark, good.white, good.metadata, capture_id="sat")
    result = ScoringClient(service).classify_capture(saturated)
    assert result.quality.status == "unusable"
    assert any(c.code == "saturated" and c.severity == "unusable" for c in result.quality.checks)


def test_answer_carries_not_measured_pixels_like_local(service, model_path, captures):
    """A saturated band: the service's map has label 0 there and reports the mask and share, as local does."""
    good = captures[2]
    raw = good.raw.copy()
    pw, ph = good.profile.pattern_wh
    (ox, oy) = good.profile.offset_xy
    h, w, _ = good.profile.cube_shape
    raw[np.ix_(oy + ph * np.arange(h), ox + pw * np.arange(4, 12) + 1)] = 1023  # band 1, cube columns 4..11
    capture = Capture(raw, good.dark, good.white, good.metadata, capture_id="band")
    remote = ScoringClient(service).classify_capture(capture)
    local = classify(capture, load_model(model_path))
    assert remote.masked_mask is not None and remote.masked_mask[:, 4:12].all()
    np.testing.assert_array_equal(remote.masked_mask, local.masked_mask)
    assert remote.masked_fraction == pytest.approx(local.masked_fraction, abs=1e-6) and remote.masked_fraction >= 8 / w
    assert (remote.labels[:, 4:12] == 0).all()
