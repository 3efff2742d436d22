"""Sampling plans: stratified batches, stratified folds and the double cross-validation fold plan.

Pure numpy, no torch: what each model trains and is validated on, decided before
any training. :func:`double_cv_plan` is THE fold plan of double cross-validation;
the local trainer and a cluster job that trains fold models separately both take
their rows from it, so one seed gives the same folds everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def stratified_batch_plan(targets: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's batches: indices into ``targets`` ``int64 (ceil(N / b), b)``.

    Every sample appears exactly once, except the top-up of the one short batch,
    filled with random samples of the largest class (as the thesis). Each batch
    keeps the class proportions: class c's samples, in random order, get evenly
    spaced keys ``(i + u_c) / n_c`` (u_c random in [0, 1)); all samples sorted by
    key and cut into runs of b give every batch ``b * n_c / N`` samples of c, give or
    take one or two. Batch order is then shuffled.
    """
    targets, n = _checked_targets(targets, batch_size)
    keys = np.empty(n, dtype=np.float64)
    classes, counts = np.unique(targets, return_counts=True)
    for c, count in zip(classes, counts):
        members = rng.permutation(np.flatnonzero(targets == c))
        keys[members] = (np.arange(count) + rng.random()) / count
    order = np.lexsort((rng.random(n), keys))
    n_batches = -(-n // batch_size)
    short = n_batches * batch_size - n
    if short:
        largest = np.flatnonzero(targets == classes[np.argmax(counts)])
        order = np.concatenate([order, rng.choice(largest, size=short, replace=short > largest.size)])
    plan = order.reshape(n_batches, batch_size)
    return plan[rng.permutation(n_batches)]


def _checked_targets(targets: np.ndarray, batch_size: int) -> tuple[np.ndarray, int]:
    """``(targets as an array, N)``; ValueError for no samples or a batch size below 1."""
    targets = np.asarray(targets)
    if targets.shape[0] == 0:
        raise ValueError("no samples to plan batches for")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return targets, targets.shape[0]


def balanced_batch_plan(targets: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch of class-balanced batches: ``int64 (ceil(N / b), b)`` indices into ``targets``.

    N draws with replacement, each class present equally likely and, within it, each
    sample: rare classes (tumour, blood) are seen as often as healthy tissue. Batches
    are consecutive runs of a random order, so each holds ``b / C`` of each class on average.
    """
    targets, n = _checked_targets(targets, batch_size)
    classes = np.unique(targets)
    n_batches = -(-n // batch_size)
    draws = np.bincount(rng.integers(0, classes.size, size=n_batches * batch_size), minlength=classes.size)
    picked = [rng.choice(np.flatnonzero(targets == c), size=k, replace=True) for c, k in zip(classes, draws)]
    return rng.permutation(np.concatenate(picked)).reshape(n_batches, batch_size)


def group_folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split sample indices into ``k`` folds by group (patient): a group's samples share one fold.

    Groups are shuffled and dealt largest first to the fold with the fewest samples, so
    folds are as even as whole patients allow. Needs at least ``k`` groups.
    """
    groups = np.asarray(groups)
    names, counts = np.unique(groups, return_counts=True)
    if names.size < k:
        raise ValueError(f"{k} patient-grouped folds need at least {k} patients, got {names.size}")
    order = rng.permutation(names.size)
    order = order[np.argsort(-counts[order], kind="stable")]
    sizes, members = np.zeros(k, np.int64), [[] for _ in range(k)]
    for g in order:
        f = int(np.argmin(sizes))
        members[f].append(names[g])
        sizes[f] += counts[g]
    return [np.flatnonzero(np.isin(groups, m)).astype(np.int64) for m in members]


def stratified_folds(targets: np.ndarray, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split sample indices into ``k`` disjoint folds (sorted ``int64`` arrays), stratified by class.

    Each class's samples are shuffled and dealt into k near-equal parts; the parts
    are rotated from class to class so fold sizes differ by at most one.
    """
    targets = np.asarray(targets)
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    folds: list[list[np.ndarray]] = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == c))
        for i, part in enumerate(np.array_split(members, k)):
            folds[(i + offset) % k].append(part)
        offset += members.size % k
    return [np.sort(np.concatenate(parts)).astype(np.int64) for parts in folds]


@dataclass(frozen=True)
class DoubleCVPlan:
    """The K x K fold models of double cross-validation, model ``m = outer * K + inner``.

    ``outer[o]``: sample indices of outer test fold o; ``train_rows[m]`` and
    ``val_rows[m]``: what model m trains and is validated on (sorted ``int64``).
    """

    folds: int
    outer: tuple[np.ndarray, ...]
    train_rows: tuple[np.ndarray, ...]
    val_rows: tuple[np.ndarray, ...]
    grouped: bool = False  # True: folds split by patient; False: by pixel, stratified by class (the thesis)

    @property
    def n_models(self) -> int:
        return len(self.train_rows)

    def test_rows(self, model: int) -> np.ndarray:
        """The outer test fold of fold model ``model``."""
        return self.outer[model // self.folds]

    def model_index(self, outer: int, inner: int) -> int:
        if not (0 <= outer < self.folds and 0 <= inner < self.folds):
            raise ValueError(f"fold ({outer}, {inner}) outside 0..{self.folds - 1}")
        return outer * self.folds + inner


def grouped_plan_possible(groups: np.ndarray | None, k: int) -> bool:
    """Whether patient-grouped double-cv is possible: every outer-training part still holds ``k`` patients.

    Dealing patients into K outer folds leaves the fewest in the largest fold's
    complement; ``k + ceil(n / k)`` patients guarantee ``k`` remain for the inner split.
    """
    if groups is None:
        return False
    n = np.unique(groups).size
    return n >= k + -(-n // k)


def double_cv_plan(targets: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None) -> DoubleCVPlan:
    """The double cross-validation plan of samples with class indices ``targets (N,)``.

    Samples are split into K outer folds stratified by class; for outer fold o the
    other K-1 folds are split again into K inner folds; inner model (o, j) trains on
    the outer-training samples minus inner fold j and is validated on inner fold j.
    With ``groups`` (patient index per sample) and enough patients
    (:func:`grouped_plan_possible`) both splits are by patient instead
    (:func:`group_folds`), so no patient sits on both sides of a validation split;
    otherwise the thesis's pixel split is used. :attr:`DoubleCVPlan.grouped` says which.
    Everything derives from ``seed`` (``numpy.random.default_rng(seed)``).
    """
    targets = np.asarray(targets)
    if k < 2:
        raise ValueError(f"double cross-validation needs at least 2 folds, got {k}")
    if targets.shape[0] < k * k:
        raise ValueError(f"double cross-validation with {k} folds needs at least {k * k} labelled pixels, "
                         f"got {targets.shape[0]}")
    rng = np.random.default_rng(seed)
    grouped = grouped_plan_possible(groups, k)
    if grouped:
        groups = np.asarray(groups)
        if groups.shape != targets.shape:
            raise ValueError(f"{groups.shape[0]} group ids for {targets.shape[0]} samples")
    outer = group_folds(groups, k, rng) if grouped else stratified_folds(targets, k, rng)
    train_rows, val_rows = [], []
    for o in range(k):
        outer_train = np.concatenate([outer[i] for i in range(k) if i != o])
        if grouped:
            inner = group_folds(groups[outer_train], k, rng)
        else:
            inner = stratified_folds(targets[outer_train], k, rng)
        for j in range(k):
            train_rows.append(np.sort(np.concatenate([outer_train[inner[i]] for i in range(k) if i != j])))
            val_rows.append(outer_train[inner[j]])
    return DoubleCVPlan(k, tuple(outer), tuple(train_rows), tuple(val_rows), grouped)
