"""Bookkeeping of many fold models trained side by side on :class:`core.model.stacked_net.StackedConv2DNet`.

:class:`ModelGroups` splits M models into stacks, one per worker thread, runs one
epoch of every model from per-model batch plans (models with fewer batches sit
out the last steps, exactly as if they had stopped), predicts and hands back each
model as a plain :class:`core.model.network.Conv2DNet`. Training code uses only this public
API and never the stacks' internals.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from core.errors import TrainingCancelled
from core.model.network import Conv2DNet
from core.model.stacked_net import StackedConv2DNet, predict_rows

IM2COL_MAX_BYTES = 3 * 2**30  # above this the steps gather patches, not precomputed im2col rows


class ModelGroups:
    """M models split into stacks trained side by side, one stack per worker thread.

    Each stack runs single-threaded torch ops in its own Python thread (torch
    releases the GIL inside ops), which uses both cores without the spinning of
    torch's intra-op thread pool — that pool slows tiny ops tens of times when the
    CPU is shared. Batch plans are given per model, so the result does not depend on
    how models are grouped (nor on the worker count).
    """

    def __init__(self, nets: list[Conv2DNet], lr: float, workers: int) -> None:
        n_groups = max(1, min(workers, len(nets)))
        self.groups = [g for g in np.array_split(np.arange(len(nets)), n_groups) if g.size]
        self.stacks = [StackedConv2DNet([nets[i] for i in g], lr=lr) for g in self.groups]
        self.m = len(nets)
        self._pool = ThreadPoolExecutor(len(self.stacks)) if len(self.stacks) > 1 else None
        self._stop = threading.Event()  # set by a failing worker: the others stop at their next batch

    def map(self, fn) -> list:
        """``fn(group_index, stack, model_indices)`` for every group, in parallel; results in group order."""
        if self._pool is None:
            return [fn(0, self.stacks[0], self.groups[0])]
        futures = [self._pool.submit(fn, k, st, g) for k, (st, g) in enumerate(zip(self.stacks, self.groups))]
        return [f.result() for f in futures]

    def training_inputs(self, patches: torch.Tensor) -> torch.Tensor:
        """The per-sample rows the steps gather: im2col columns when they fit in memory, else the patches."""
        if patches.shape[0] * self.stacks[0].columns_per_sample * 4 > IM2COL_MAX_BYTES:
            return patches
        return self.stacks[0].im2col(patches)

    def train_epoch(
        self,
        inputs: torch.Tensor,
        onehot: torch.Tensor,
        plans: list[np.ndarray],
        should_stop: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """One epoch of every model; returns each model's mean cross-entropy ``float64 (M,)``.

        ``inputs``: :meth:`training_inputs` of the patches ``(N, ...)``; ``onehot``:
        float targets ``(N, C)``; ``plans[m]``: model m's batches ``int64 (steps_m, b)``
        (indices into ``inputs``). ``should_stop`` is polled before every batch (from
        the worker threads); TrainingCancelled when it returns True.
        """
        if len(plans) != self.m:
            raise ValueError(f"{len(plans)} batch plans for {self.m} models")

        def run(_k: int, stack: StackedConv2DNet, group: np.ndarray) -> list[float]:
            try:
                return self._epoch(stack, [plans[m] for m in group], inputs, onehot, should_stop)
            except BaseException:
                self._stop.set()
                raise

        losses = np.concatenate(self.map(run))
        out = np.empty(self.m)
        out[np.concatenate(self.groups)] = losses
        return out

    def _epoch(self, stack, plans, inputs, onehot, should_stop) -> list[float]:
        b = plans[0].shape[1]
        steps, g = max(p.shape[0] for p in plans), len(plans)
        table = np.empty((steps, g, b), dtype=np.int64)
        active = np.ones((steps, g), dtype=bool)
        for i, plan in enumerate(plans):
            table[: plan.shape[0], i] = plan
            table[plan.shape[0] :, i] = plan[0]  # placeholder batch, masked out of the step
            active[plan.shape[0] :, i] = False
        table_t = torch.from_numpy(table.reshape(steps, g * b))
        loss_sum = torch.zeros(g, dtype=torch.float64)
        for j in range(steps):
            if self._stop.is_set() or (should_stop is not None and should_stop()):
                self._stop.set()
                raise TrainingCancelled("training cancelled")
            rows = table_t[j]
            mask = None if active[j].all() else active[j]
            loss = stack.step(inputs.index_select(0, rows), onehot.index_select(0, rows).view(g, b, -1), active=mask)
            loss_sum += loss if mask is None else loss * torch.from_numpy(mask)
        return (loss_sum / torch.tensor([p.size for p in plans], dtype=torch.float64)).tolist()

    def predict_rows(self, patches: torch.Tensor, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Model m's class indices for samples ``rows[m]``."""
        parts = self.map(lambda k, st, g: predict_rows(st, patches, [rows[i] for i in g]))
        out: list[np.ndarray] = [np.zeros(0, np.int64)] * self.m
        for g, pred in zip(self.groups, parts):
            for i, p in zip(g, pred):
                out[i] = p
        return out

    def to_net(self, index: int) -> Conv2DNet:
        """Model ``index`` as a fresh Conv2DNet in eval mode."""
        for g, st in zip(self.groups, self.stacks):
            where = np.flatnonzero(g == index)
            if where.size:
                return st.to_net(int(where[0]))
        raise IndexError(index)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


@contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for the block (batch-16 ops are too small to split)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def deterministic():
    """Deterministic algorithms on for the block (every op used has one on the CPU), restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
