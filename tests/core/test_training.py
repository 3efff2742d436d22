"""Training: batch plans and folds, the lockstep trainer against torch's Adam, determinism, cancel, learning."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import TrainingCancelled
from core.model.network import Conv2DNet
from core.model.patches import PatchSet
from core.model.stacked_net import StackedConv2DNet
from core.training.folds import double_cv_plan, stratified_batch_plan, stratified_folds
from core.training.trainer import (
    TrainingConfig,
    patch_set_from_captures,
    predict_patches,
    train,
    train_patch_set,
)


def _toy_patches(n: int = 240, seed: int = 0) -> PatchSet:
    """Separable toy patches: class c adds 0.4*c to every value (25 bands, 7x7)."""
    rng = np.random.default_rng(seed)
    targets = rng.choice(5, size=n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    patches = (rng.normal(size=(n, 25, 7, 7)) * 0.5 + 0.4 * targets[:, None, None, None]).astype(np.float32)
    return PatchSet(patches, targets, np.zeros(n, np.int64), (1, 2, 3, 4, 5), ("toy",))


# -- batch plans and folds -------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 120), min_size=1, max_size=5),
    batch=st.sampled_from([4, 16]),
    seed=st.integers(0, 10_000),
)
def test_batch_plan_covers_every_sample_once_and_keeps_proportions(counts, batch, seed):
    targets = np.repeat(np.arange(len(counts)), counts)
    plan = stratified_batch_plan(targets, batch, np.random.default_rng(seed))
    n = targets.size
    assert plan.shape == (-(-n // batch), batch)
    used = np.bincount(plan.ravel(), minlength=n)
    assert (used >= 1).all()  # every sample at least once ...
    extra = np.flatnonzero(used > 1)
    largest = int(np.argmax(counts))
    assert all(targets[i] == largest for i in extra)  # ... top-ups only from the largest class
    assert used.sum() - n == plan.size - n
    share = np.asarray(counts) / n
    for row in plan:
        if (used[row] > 1).any():
            continue  # the one topped-up batch
        per_class = np.bincount(targets[row], minlength=len(counts))
        assert np.all(np.abs(per_class - batch * share) <= 2.0 + 1e-9), (per_class, batch * share)


def test_batch_plan_differs_between_epochs_but_not_between_seeds():
    targets = np.repeat(np.arange(3), [50, 30, 20])
    a = stratified_batch_plan(targets, 16, np.random.default_rng(1))
    b = stratified_batch_plan(targets, 16, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    stratified_batch_plan(targets, 16, rng)
    c = stratified_batch_plan(targets, 16, rng)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_stratified_folds_are_disjoint_balanced_and_cover_everything():
    targets = np.repeat(np.arange(4), [53, 21, 7, 3])
    folds = stratified_folds(targets, 5, np.random.default_rng(0))
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(targets.size))
    sizes = [f.size for f in folds]
    assert max(sizes) - min(sizes) <= 1
    per_class = np.array([np.bincount(targets[f], minlength=4) for f in folds])
    assert (per_class.max(0) - per_class.min(0) <= 1).all()


# -- the lockstep trainer is separate training -----------------------------------------------------
def test_stacked_models_train_exactly_like_separate_torch_adam():
    data = _toy_patches(64)
    x, y = torch.from_numpy(data.patches), torch.from_numpy(data.targets)
    onehot = F.one_hot(y, 5).float()
    nets = []
    for seed in range(3):
        torch.manual_seed(seed)
        nets.append(Conv2DNet())
    stacked = StackedConv2DNet(nets, lr=1e-3)
    refs = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = Conv2DNet()
        refs.append((net, torch.optim.Adam(net.parameters(), lr=1e-3)))
    rng = np.random.default_rng(0)
    for step in range(12):
        idx = torch.from_numpy(rng.integers(0, 64, size=(3, 8)))
        active = np.array([True, step % 4 != 1, True])  # model 1 sits out some steps
        stacked.step(x[idx.reshape(-1)], onehot[idx], active=active)
        for m, (net, opt) in enumerate(refs):
            if active[m]:
                opt.zero_grad()
                F.cross_entropy(net(x[idx[m]]), y[idx[m]]).backward()
                opt.step()
    probe = x[:8].repeat(3, 1, 1, 1)
    torch.testing.assert_close(stacked.logits(stacked.im2col(probe)), stacked.logits(probe))
    for m, (net, _) in enumerate(refs):
        torch.testing.assert_close(stacked.logits(probe)[m], net(x[:8]), rtol=1e-4, atol=1e-5)
        got = stacked.to_net(m).state_dict()
        for name, value in net.state_dict().items():
            torch.testing.assert_close(got[name], value, rtol=1e-5, atol=1e-6)


# -- determinism, cancel ---------------------------------------------------------------------------
@pytest.mark.parametrize("cv", ["none", "double"])
def test_two_runs_with_one_seed_give_identical_weights(cv):
    data = _toy_patches(120 if cv == "none" else 100)
    config = TrainingConfig(epochs=2, batch_size=8, cross_validation=cv, folds=2, seed=5)
    a = train_patch_set(data, config).net.state_dict()
    b = train_patch_set(data, config).net.state_dict()
    c = train_patch_set(data, TrainingConfig(epochs=2, batch_size=8, cross_validation=cv, folds=2, seed=6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc1.weight"], c.net.state_dict()["fc1.weight"])


def test_cancel_stops_within_one_batch():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 7

    epochs = []
    with pytest.raises(TrainingCancelled):
        train_patch_set(_toy_patches(), TrainingConfig(epochs=5), progress=epochs.append, should_stop=should_stop)
    assert len(calls) == 7  # polled before every batch; no batch ran after the stop request
    assert epochs == []  # 240 samples / 16 = 15 batches per epoch: stopped inside the first epoch


def test_cancel_stops_double_cv_workers():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 5

    epochs = []
    with pytest.raises(TrainingCancelled):
        train_patch_set(_toy_patches(200), TrainingConfig(epochs=3, folds=2, cross_validation="double"),
                        progress=epochs.append, should_stop=should_stop, workers=2)
    assert epochs == [] and 5 <= len(calls) <= 6  # each of the 2 workers polls before its next batch


def test_progress_every_epoch_and_double_cv_selection():
    seen = []
    result = train_patch_set(_toy_patches(150), TrainingConfig(epochs=2, folds=3, cross_validation="double"),
                             progress=seen.append)
    assert len(seen) == 2 * 9 and {p.fold for p in seen} == set(range(9))
    assert seen[-1].fraction == 1.0 and all(p.val_oacc is not None for p in seen)
    m = result.metrics
    assert m["mode"] == "double-cv" and len(m["outer"]) == 3
    for fold in m["outer"]:  # each inner winner has the best validation OACC of its outer fold
        assert fold["inner_val_oacc"][fold["winner_inner"]] == max(fold["inner_val_oacc"])
    assert m["chosen"]["outer"] == int(np.argmax([f["test_oacc"] for f in m["outer"]]))
    assert m["test"]["oacc"] == max(f["test_oacc"] for f in m["outer"])


def test_config_validation():
    with pytest.raises(ValueError, match="cross_validation"):
        TrainingConfig(cross_validation="triple")
    with pytest.raises(ValueError, match="epochs"):
        TrainingConfig(epochs=0)
    with pytest.raises(ValueError, match="patch_size"):
        TrainingConfig(patch_size=6)


# -- learning on generated captures ----------------------------------------------------------------
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from core.dataset.folders import read_dataset, write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    root = tmp_path_factory.mktemp("dataset")
    profile = small_profile()
    for i in range(4):
        c = generate_capture(seed=i, patient="ID30", profile=profile)
        write_capture_folder(root, f"ID0030C{i + 1:02d}", c.raw, c.dark, c.white, c.labels, metadata=c.metadata,
                             meta={"patient": "ID30"})
    return read_dataset(root)


def test_a_few_epochs_beat_chance_clearly_on_a_held_out_capture(small_dataset):
    result = train(small_dataset[1:], TrainingConfig(epochs=12, seed=0))
    test, _ = patch_set_from_captures(small_dataset[:1])
    pred = predict_patches(result.net, test.patches)
    accuracy = float((pred == test.targets).mean())
    majority = test.class_counts.max() / len(test)
    assert accuracy > max(0.6, majority + 0.2), (accuracy, majority)
    assert result.training_ids == tuple(c.capture_id for c in small_dataset[1:])
    assert result.profile_id == "synthetic-small" and result.n_samples > 0


def test_double_cv_result_does_not_depend_on_worker_threads():
    data = _toy_patches(90)
    config = TrainingConfig(epochs=2, batch_size=8, cross_validation="double", folds=2, seed=3)
    one = train_patch_set(data, config, workers=1)
    two = train_patch_set(data, config, workers=2)
    for name, value in one.net.state_dict().items():
        torch.testing.assert_close(two.net.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    assert one.metrics["chosen"] == two.metrics["chosen"]


def test_double_cv_plan_is_nested_disjoint_and_seeded():
    targets = np.repeat(np.arange(3), [40, 25, 10])
    plan = double_cv_plan(targets, 3, seed=4)
    assert plan.n_models == 9 and len(plan.outer) == 3
    assert sorted(np.concatenate(plan.outer).tolist()) == list(range(targets.size))
    for m in range(plan.n_models):
        train, val, test = plan.train_rows[m], plan.val_rows[m], plan.test_rows(m)
        assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
        # train + validation = everything outside the outer test fold
        assert sorted(np.concatenate([train, val]).tolist()) == sorted(set(range(targets.size)) - set(test))
    assert plan.model_index(2, 1) == 7
    again = double_cv_plan(targets, 3, seed=4)
    other = double_cv_plan(targets, 3, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(plan.train_rows, again.train_rows))
    assert not all(np.array_equal(a, b) for a, b in zip(plan.train_rows, other.train_rows))
    with pytest.raises(ValueError, match="at least 9 labelled pixels"):
        double_cv_plan(targets[:8], 3, seed=0)


def test_fold_models_trained_one_by_one_select_the_same_model_as_training_them_together(tmp_path):
    """What a cluster does (one trial per fold model, then selection) matches the local lockstep run."""
    from core.training.double_cv import FoldRecord, select_double_cv
    from core.training.trainer import train_fold_model

    data = _toy_patches(90)
    config = TrainingConfig(epochs=2, batch_size=8, cross_validation="double", folds=2, seed=3)
    together = train_patch_set(data, config, workers=2)
    trials = [train_fold_model(data, config, m) for m in (3, 1, 0, 2)]  # any order, as trials finish
    for _, record in trials:  # each trial writes its record; the selection step reads them back
        (tmp_path / f"fold-{record.model}.json").write_text(record.to_json())
    records = [FoldRecord.from_file(p) for p in sorted(tmp_path.glob("fold-*.json"))]
    chosen, metrics = select_double_cv(records, 2)
    assert metrics["chosen"] == together.metrics["chosen"]
    assert metrics["test_oacc_mean"] == pytest.approx(together.metrics["test_oacc_mean"])
    net = dict((r.model, n) for n, r in trials)[chosen]
    for name, value in together.net.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="missing \\[2\\]"):
        select_double_cv([r for r in records if r.model != 2], 2)
    # a stale record of another run (other seed) in the folder is refused, not silently selected
    _, stale = train_fold_model(data, TrainingConfig(epochs=2, batch_size=8, cross_validation="double", folds=2,
                                                     seed=4), 2)
    with pytest.raises(ValueError, match="different runs"):
        select_double_cv([r for r in records if r.model != 2] + [stale], 2)

