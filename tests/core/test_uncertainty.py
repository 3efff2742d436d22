"""How sure each pixel is: temperature scaling, ECE, entropy, the ensemble in the model file and in classification."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ModelFileError
from core.model.ensemble import with_ensemble
from core.model.files import load_model, save_model
from core.model.inference import Prepared, classify_prepared, predict_dense
from core.model.network import Conv2DNet
from core.model.uncertainty import disagreement, predictive_entropy, uncertain_mask, with_uncertainty
from core.spectral.chain import Cube
from core.training.calibration import calibration_report, ece, fit_temperature, nll, softmax


def _miscalibrated(n: int, seed: int, *, sharpen: float = 3.0):
    """Logits of an over-confident model: targets drawn from softmax(z), logits given as sharpen * z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5)) * 1.5
    p = softmax(z)
    targets = np.array([rng.choice(5, p=row) for row in p])
    return z * sharpen, targets


# -- calibration -----------------------------------------------------------------------------------
def test_temperature_scaling_lowers_ece_on_held_out_data():
    val_logits, val_targets = _miscalibrated(3000, seed=1)
    test_logits, test_targets = _miscalibrated(3000, seed=2)
    t = fit_temperature(val_logits, val_targets)
    assert 2.4 < t < 3.6  # the logits were sharpened 3x
    before, after = ece(softmax(test_logits), test_targets), ece(softmax(test_logits, t), test_targets)
    assert before > 0.1 and after < before / 2
    assert nll(test_logits, test_targets, t) < nll(test_logits, test_targets)
    report = calibration_report(test_logits, test_targets, t)
    assert report["ece"] == pytest.approx(after) and report["ece_uncalibrated"] == pytest.approx(before)
    assert report["temperature"] == t and report["n"] == 3000
    assert calibration_report(test_logits, test_targets, None)["temperature"] is None


def test_an_under_confident_model_gets_a_temperature_below_one():
    logits, targets = _miscalibrated(3000, seed=3, sharpen=0.4)
    assert fit_temperature(logits, targets) < 0.6


@pytest.mark.parametrize("temperature", [0.05, 0.5, 1.7, 20.0])
def test_temperature_never_changes_the_argmax(temperature):
    logits = np.random.default_rng(4).normal(size=(500, 5)) * 4
    np.testing.assert_array_equal(softmax(logits, temperature).argmax(1), logits.argmax(1))


def test_ece_of_perfect_and_of_worst_predictions():
    targets = np.array([0, 1, 2, 1])
    assert ece(np.eye(3)[targets], targets) == 0.0
    assert ece(np.eye(3)[(targets + 1) % 3], targets) == 1.0


def test_calibration_input_is_validated():
    with pytest.raises(ValueError, match="targets"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="class indices"):
        ece(np.full((2, 2), 0.5), np.array([0, 2]))
    with pytest.raises(ValueError, match="no validation"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="temperature"):
        softmax(np.zeros((1, 2)), 0.0)


# -- entropy and disagreement ----------------------------------------------------------------------
def test_entropy_is_zero_for_certain_one_for_uniform_and_bounded_between():
    assert predictive_entropy(np.eye(4))[0] == 0.0
    assert predictive_entropy(np.full((1, 4), 0.25))[0] == pytest.approx(1.0, abs=1e-6)
    random = np.random.default_rng(5).dirichlet(np.ones(5), size=(30, 40))
    u = predictive_entropy(random)
    assert u.shape == (30, 40) and u.dtype == np.float32
    assert 0.0 < u.min() and u.max() <= 1.0
    assert predictive_entropy(np.zeros((2, 5))).tolist() == [0.0, 0.0]  # invalid pixels


def test_entropy_matches_the_textbook_formula_on_a_float32_map():
    """Worked class plane by class plane in float32: the same values as -sum p log p / log C in float64."""
    random = np.random.default_rng(6).dirichlet(np.full(5, 0.3), size=(40, 50)).astype(np.float32)
    random[0, :3] = 0.0  # invalid pixels
    random[1, 0] = [1, 0, 0, 0, 0]
    p = random.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1) / np.log(5)
    np.testing.assert_allclose(predictive_entropy(random), expected, atol=1e-6)
    members = np.stack([random, random[::-1]])
    np.testing.assert_allclose(predictive_entropy(members)[1], expected[::-1], atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf])
def test_entropy_refuses_probabilities_that_are_not_finite_and_non_negative(bad):
    probs = np.full((3, 4, 5), 0.2, np.float32)
    probs[2, 3, 4] = bad
    with pytest.raises(ValueError, match="finite and non-negative"):
        predictive_entropy(probs)


def test_disagreement_is_zero_when_members_agree_and_one_when_each_is_sure_of_another_class():
    same = np.repeat(np.random.default_rng(6).dirichlet(np.ones(3), size=(1, 7)), 4, axis=0)
    assert np.abs(disagreement(same)).max() < 1e-6
    split = np.eye(3)[:, None, :]  # three members, each certain of a different class
    assert disagreement(split)[0] == pytest.approx(1.0, abs=1e-6)


def test_uncertain_mask_follows_the_threshold_and_skips_invalid_pixels():
    probs = np.random.default_rng(7).dirichlet(np.ones(5) * 0.7, size=(20, 30)).astype(np.float32)
    valid = np.ones((20, 30), bool)
    valid[:3] = False
    low, low_share = uncertain_mask(probs, 0.3, valid)
    high, high_share = uncertain_mask(probs, 0.8, valid)
    assert low.sum() > high.sum() > 0 and not low[:3].any()
    assert (high <= low).all() and low_share == pytest.approx(low.sum() / valid.sum())
    with pytest.raises(ValueError, match="0..1"):
        uncertain_mask(probs, 1.5)


# -- the ensemble in the model file and in classification -------------------------------------------
def _net(seed: int) -> Conv2DNet:
    torch.manual_seed(seed)
    net = Conv2DNet(25, 5, 7).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _ensemble_file(tmp_path, n_members: int = 3):
    path = tmp_path / "ens.safetensors"
    members = [(_net(10 + i), 0.8 + 0.3 * i) for i in range(n_members)]
    save_model(path, members[0][0], name="ens", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id="p",
               temperature=members[0][1], ensemble=members, created="2026-01-01T00:00:00Z")
    return path, members


def test_ensemble_round_trips_through_one_safetensors_file_without_pickle(tmp_path):
    path, members = _ensemble_file(tmp_path)
    data = path.read_bytes()
    assert data[:1] != b"\x80" and not data.startswith(b"PK")  # a safetensors header, not a pickle
    loaded = load_model(path)
    assert loaded.info.ensemble_size == 3 and loaded.info.temperature == pytest.approx(0.8)
    assert loaded.member_temperatures == pytest.approx([t for _, t in members])
    assert not loaded.use_ensemble  # the single model stays the default
    for (net, _), got in zip(members, loaded.members):
        for key, value in net.state_dict().items():
            assert torch.equal(value, got.state_dict()[key])
    # a file whose metadata names more members than it holds is refused in one line
    from safetensors.numpy import load, save

    tensors = load(data)
    tensors.pop("ensemble.2.fc2.bias")
    header = data[8 : 8 + int.from_bytes(data[:8], "little")]
    import json

    meta = json.loads(header)["__metadata__"]
    (tmp_path / "bad.safetensors").write_bytes(save(tensors, metadata=meta))
    with pytest.raises(ModelFileError, match="ensemble tensors"):
        load_model(tmp_path / "bad.safetensors")


def test_a_model_without_ensemble_refuses_to_classify_with_one(tmp_path):
    path = tmp_path / "single.safetensors"
    save_model(path, _net(1), name="single", class_ids=(1, 2, 3, 4, 5), class_names="abcde", profile_id="p")
    loaded = load_model(path)
    assert loaded.info.ensemble_size == 0 and loaded.info.temperature == 1.0
    with pytest.raises(ModelFileError, match="no ensemble"):
        with_ensemble(loaded)


def _prepared(seed: int = 0, h: int = 19, w: int = 23) -> Prepared:
    rng = np.random.default_rng(seed)
    valid = np.ones((h, w), bool)
    valid[0, :4] = False
    data = rng.random((h, w, 25), dtype=np.float32) + 0.5
    data[~valid] = 0.0
    cube = Cube(data, valid, None, "p")
    # random spectra are no tissue (core.spectral.tissue): only the invalid pixels are "not measured" here
    return Prepared(capture=None, cube=cube, rgb=np.zeros((h, w, 3), np.uint8), timings_s={}, not_measured=~valid)


def test_classify_with_the_ensemble_averages_calibrated_members_and_flags_uncertain_pixels(tmp_path):
    path, members = _ensemble_file(tmp_path)
    loaded = load_model(path)
    prepared = _prepared()
    result = classify_prepared(prepared, with_ensemble(loaded), uncertainty_threshold=0.2)
    expected = np.mean([predict_dense(net, prepared.cube, class_ids=(1, 2, 3, 4, 5), temperature=t)[0]
                        for net, t in members], axis=0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)
    assert "ensemble of 3" in result.model.name
    mask = result.uncertain_mask
    assert mask is not None and mask.shape == (19, 23) and mask.dtype == bool
    assert mask.any() and not mask[0, :4].any()
    assert result.uncertain_fraction == pytest.approx(mask.sum() / prepared.cube.valid.sum())
    single = classify_prepared(prepared, loaded, uncertainty_threshold=None)
    assert single.uncertain_mask is None and single.uncertain_fraction is None
    assert single.model.name == "ens"
    # the single model applies its own temperature (0.8): same labels, sharper probabilities
    raw, raw_labels = predict_dense(loaded.net, prepared.cube, class_ids=(1, 2, 3, 4, 5))
    np.testing.assert_array_equal(single.labels, raw_labels)
    calibrated = softmax(np.log(np.maximum(raw[prepared.cube.valid], 1e-30)), 0.8)
    np.testing.assert_allclose(single.probabilities[prepared.cube.valid], calibrated, atol=1e-4)


def test_changing_the_threshold_changes_the_mask_without_classifying_again(tmp_path):
    path, _ = _ensemble_file(tmp_path)
    prepared = _prepared(1)
    result = classify_prepared(prepared, with_ensemble(load_model(path)), uncertainty_threshold=None)
    u = predictive_entropy(result.probabilities)[prepared.cube.valid]
    low, high = (float(q) for q in np.quantile(u, [0.25, 0.75]))
    result = with_uncertainty(result, low)
    strict = with_uncertainty(result, high)
    assert result.uncertain_mask.sum() > strict.uncertain_mask.sum()
    assert (strict.uncertain_mask <= result.uncertain_mask).all()
    np.testing.assert_array_equal(strict.labels, result.labels)
    assert with_uncertainty(result, None).uncertain_mask is None
    assert with_uncertainty(strict, high) is strict  # nothing changed: the same result, no copy
    # a remote answer without probabilities: uncertainty unknown, no flag rather than an error
    from dataclasses import replace

    bare = replace(result, probabilities=np.zeros((*result.labels.shape, 0), np.float32), cube=None)
    assert with_uncertainty(bare, 0.5).uncertain_mask is None


def test_double_cv_calibrates_each_outer_winner_on_its_own_validation_fold():
    from core.model.patches import PatchSet
    from core.training.calibration import patch_logits
    from core.training.double_cv import outer_winners
    from core.training.folds import double_cv_plan
    from core.training.trainer import TrainingConfig, train_patch_set

    rng = np.random.default_rng(0)
    targets = rng.choice(3, size=150)
    patches = (rng.normal(size=(150, 25, 7, 7)) * 0.8 + 0.3 * targets[:, None, None, None]).astype(np.float32)
    data = PatchSet(patches, targets, np.zeros(150, np.int64), (1, 2, 3), ("toy",))
    config = TrainingConfig(epochs=2, folds=3, cross_validation="double", seed=2)
    result = train_patch_set(data, config, workers=1)
    plan, winners = double_cv_plan(targets, 3, 2), outer_winners(result.metrics)
    assert len(result.members) == 3 and len(winners) == 3
    for member, index, temperature in zip(result.members, winners, result.member_temperatures):
        val = plan.val_rows[index]
        assert temperature == pytest.approx(fit_temperature(patch_logits(member, patches[val]), targets[val]),
                                            rel=1e-4)
    chosen = result.metrics["chosen"]["outer"]
    assert result.temperature == result.member_temperatures[chosen]
