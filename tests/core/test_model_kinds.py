"""Model kinds: SpectralNet files, inference and training; class balance; patient-grouped folds."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import DatasetError, ModelFileError
from core.model.compatibility import check_runs_on
from core.model.files import load_model, save_model
from core.model.spectral_net import SpectralNet
from core.training.config import TrainingConfig
from core.training.folds import balanced_batch_plan, double_cv_plan, group_folds, stratified_batch_plan
from core.training.spectral_trainer import StackedSpectralNet, class_weights, train_spectral_models


def _net(seed=0, bands=25, classes=5):
    torch.manual_seed(seed)
    return SpectralNet(bands, classes)


def test_spectral_model_file_round_trip_and_dense_inference(tmp_path):
    from core.model.inference import predict_dense
    from core.spectral.chain import Cube

    net = _net()
    info = save_model(tmp_path / "s.safetensors", net, name="s", class_ids=(1, 2, 3, 4, 5),
                      class_names=("a", "b", "c", "d", "e"), profile_id="thesis-sm5x5-nir")
    assert (info.architecture, info.model_kind, info.inputs) == ("SpectralNet", "spectral", "spectra")
    loaded = load_model(tmp_path / "s.safetensors")
    assert isinstance(loaded.net, SpectralNet) and loaded.info.inputs == "spectra"
    cube = np.random.default_rng(0).random((6, 7, 25)).astype(np.float32) + 0.5
    valid = np.ones((6, 7), bool)
    valid[0, 0] = False
    probs, labels = predict_dense(loaded.net, Cube(cube, valid, None, "x"), class_ids=(1, 2, 3, 4, 5))
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(cube.reshape(-1, 25))), 1).numpy().reshape(6, 7, 5)
    np.testing.assert_allclose(probs[valid], expected[valid], atol=1e-6)
    assert labels[0, 0] == 0 and probs[0, 0].sum() == 0
    np.testing.assert_array_equal(labels[valid], expected[valid].argmax(-1) + 1)
    # the model file's temperature applies to a spectral model too (calibrated, labels unchanged)
    hot, hot_labels = predict_dense(loaded.net, Cube(cube, valid, None, "x"), class_ids=(1, 2, 3, 4, 5),
                                    temperature=2.0)
    with torch.no_grad():
        scaled = torch.softmax(net(torch.from_numpy(cube.reshape(-1, 25))) / 2.0, 1).numpy().reshape(6, 7, 5)
    np.testing.assert_allclose(hot[valid], scaled[valid], atol=1e-6)
    np.testing.assert_array_equal(hot_labels, labels)


def test_model_kind_must_match_architecture_and_inputs_are_checked(tmp_path):
    import json
    import struct

    save_model(tmp_path / "s.safetensors", _net(), name="s", class_ids=(1, 2, 3, 4, 5),
               class_names=tuple("abcde"), profile_id="p")
    data = (tmp_path / "s.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["neurohsi"])
    meta["model_kind"] = "conv2dnet"
    header["__metadata__"]["neurohsi"] = json.dumps(meta)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n :])
    with pytest.raises(ModelFileError, match="do not match architecture 'SpectralNet'"):
        load_model(tmp_path / "bad.safetensors")

    from core.model.choice import resolve_model

    conv = resolve_model(None).info  # the demo model: a Conv2DNet
    assert conv.model_kind == "conv2dnet" and conv.inputs == "patches"
    with pytest.raises(ModelFileError, match="needs 7x7 patches .* labelled spectra only; use a spectral model"):
        check_runs_on(conv, has_image=False, what="ID0065C01")
    check_runs_on(conv, has_image=True, what="a cube")
    check_runs_on(load_model(tmp_path / "s.safetensors").info, has_image=False, what="spectra")


def test_stacked_spectral_training_equals_adam_on_each_model_alone():
    rng = np.random.default_rng(0)
    n = 150
    inputs = torch.from_numpy(rng.normal(size=(n, 25, 1, 1)).astype(np.float32))
    targets = rng.integers(0, 5, n)
    rows = [np.arange(100), np.arange(40, 150), np.arange(0, 150, 2)]  # different lengths: batches differ
    config = TrainingConfig(epochs=2, batch_size=16, model_kind="spectral", seed=3)
    models = train_spectral_models(inputs, targets, rows, None, config, n_classes=5, stage="no-cv", progress=None,
                                   should_stop=None, history=[])
    x, t = inputs.reshape(n, -1), torch.from_numpy(targets)
    for m in range(3):
        torch.manual_seed(3)
        alone = [SpectralNet(25, 5) for _ in range(3)][m]
        optimiser = torch.optim.Adam(alone.parameters(), lr=config.lr)
        stream = np.random.default_rng([3, 1, m])
        for _ in range(2):
            for batch in rows[m][stratified_batch_plan(targets[rows[m]], 16, stream)]:
                batch = torch.from_numpy(batch)
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(alone(x[batch]), t[batch]).backward()
                optimiser.step()
        # float rounding of batched vs single matmuls only: one Adam step moves a weight by ~lr = 1e-3,
        # so a step skipped or taken twice (a sitting-out model updated) would show 20x above this bound
        for mine, theirs in zip(models.to_net(m).parameters(), alone.parameters()):
            torch.testing.assert_close(mine, theirs, atol=5e-5, rtol=1e-4)


def test_stacked_forward_equals_each_net():
    nets = [_net(s) for s in range(3)]
    x = torch.randn(3, 9, 25)
    with torch.no_grad():
        torch.testing.assert_close(StackedSpectralNet(nets)(x), torch.stack([n(x[i]) for i, n in enumerate(nets)]))


def test_class_balance_options():
    targets = np.array([0] * 90 + [1] * 9 + [2] * 1)
    plan = balanced_batch_plan(targets, 10, np.random.default_rng(0))
    assert plan.shape == (10, 10)
    share = np.bincount(targets[plan.ravel()], minlength=3) / plan.size
    assert np.all(share > 0.2)  # stratified batches would give the rare class 1 %
    assert np.bincount(targets[stratified_batch_plan(targets, 10, np.random.default_rng(0)).ravel()])[2] <= 2
    np.testing.assert_allclose(class_weights(targets, 4), [100 / 270, 100 / 27, 100 / 3, 0], rtol=1e-6)
    with pytest.raises(ValueError, match="Conv2DNet balances by 'sampling'"):
        TrainingConfig(balance="loss")
    with pytest.raises(ValueError, match="model kind must be one of"):
        TrainingConfig(model_kind="svm")


def test_weighted_loss_changes_training():
    rng = np.random.default_rng(1)
    inputs = torch.from_numpy(rng.normal(size=(60, 25, 1, 1)).astype(np.float32))
    targets = np.array([0] * 50 + [1] * 10)
    args = dict(n_classes=2, stage="no-cv", progress=None, should_stop=None, history=[])
    plain = train_spectral_models(inputs, targets, [np.arange(60)], None, TrainingConfig(epochs=1, model_kind="spectral"), **args)
    weighted = train_spectral_models(inputs, targets, [np.arange(60)], None,
                                     TrainingConfig(epochs=1, model_kind="spectral", balance="loss"), **args)
    assert not torch.equal(plain.to_net(0).fc2.bias, weighted.to_net(0).fc2.bias)


def test_patient_grouped_folds():
    groups = np.repeat(np.arange(8), [30, 10, 20, 5, 25, 15, 10, 5])
    folds = group_folds(groups, 3, np.random.default_rng(0))
    assert sorted(np.concatenate(folds).tolist()) == list(range(groups.size))
    for fold in folds:
        for other in folds:
            if other is not fold:
                assert not set(groups[fold]) & set(groups[other])
    targets = np.arange(groups.size) % 3
    plan = double_cv_plan(targets, 2, 0, groups)
    assert plan.grouped
    for m in range(plan.n_models):
        assert not set(groups[plan.train_rows[m]]) & set(groups[plan.val_rows[m]])
        assert not set(groups[plan.train_rows[m]]) & set(groups[plan.test_rows(m)])
    assert double_cv_plan(targets, 5, 0, groups).grouped  # 8 = 5 + ceil(8 / 5) + 1 patients: enough
    six = np.minimum(groups, 5)  # 6 patients cannot leave 5 for every inner split
    few = double_cv_plan(targets, 5, 0, six)
    assert not few.grouped
    assert set(six[few.train_rows[0]]) & set(six[few.val_rows[0]])  # pixel folds mix patients


def test_conv2dnet_samples_need_positions(tmp_path):
    from core.dataset.folders import read_dataset
    from core.dataset.nemesis_import import import_nemesis
    from core.training.samples import samples_from_captures
    from tests.support.nemesis_mat import write_archive

    write_archive(tmp_path / "a", [("ID0001C01", 1)])
    write_archive(tmp_path / "a", [("ID0002C01", 2)], forms=("spectra",))
    import_nemesis(tmp_path / "a", tmp_path / "ds")
    captures = read_dataset(tmp_path / "ds")
    spectral, profile = samples_from_captures(captures, "spectral")
    assert spectral.patches.shape[1:] == (25, 1, 1) and profile == "thesis-sm5x5-nir"
    with pytest.raises(DatasetError, match="ID0002C01: Conv2DNet needs 7x7 patches.*--model-kind spectral"):
        samples_from_captures(captures, "conv2dnet")
    patches, _ = samples_from_captures(captures[:1], "conv2dnet")
    assert patches.patches.shape[1:] == (25, 7, 7)
    np.testing.assert_array_equal(patches.patches[:, :, 3, 3], spectral.patches[: len(patches), :, 0, 0])


def test_compare_a_spectral_model_with_a_conv2dnet_on_held_out_spectra(tmp_path):
    from core.dataset.folders import read_dataset
    from core.dataset.nemesis_import import import_nemesis
    from core.model.network import Conv2DNet
    from core.training.comparison import compare_models
    from tests.support.nemesis_mat import write_archive

    write_archive(tmp_path / "a", [("ID0001C01", 1)])
    import_nemesis(tmp_path / "a", tmp_path / "ds")
    captures = read_dataset(tmp_path / "ds")
    kwargs = dict(class_ids=(1, 2, 3, 4, 5), class_names=tuple("abcde"), profile_id="thesis-sm5x5-nir")
    save_model(tmp_path / "s.safetensors", _net(), name="s", **kwargs)
    torch.manual_seed(0)
    save_model(tmp_path / "c.safetensors", Conv2DNet(25, 5), name="c", **kwargs)
    result = compare_models(load_model(tmp_path / "c.safetensors"), load_model(tmp_path / "s.safetensors"), captures)
    n = len(captures[0].load_spectra().data)
    assert result.new.metrics["n"] == n and result.installed.metrics["n"] == n  # spectra vs sparse patches
    write_archive(tmp_path / "b", [("ID0002C01", 2)], forms=("spectra",))  # no map: no positions
    import_nemesis(tmp_path / "b", tmp_path / "ds2")
    no_positions = read_dataset(tmp_path / "ds2")
    result = compare_models(load_model(tmp_path / "c.safetensors"), load_model(tmp_path / "s.safetensors"), no_positions)
    assert result.installed.metrics is None and "labelled spectra only" in result.installed.problem
    assert result.new.metrics["n"] == len(no_positions[0].load_spectra().data)
