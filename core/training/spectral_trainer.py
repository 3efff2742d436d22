"""Training SpectralNet models (:mod:`core.model.spectral_net`) with the trainer's contract.

:func:`train_spectral_models` trains M models, model m on samples ``train_rows[m]``,
each from its own seed stream ``(config.seed, i)`` as :mod:`core.training.trainer` does
for Conv2DNet, and returns a :class:`SpectralModels` with the same small API as
:class:`core.training.stacked_models.ModelGroups` (``predict_rows``, ``to_net``, ``close``),
so no-cv, double-cv and leave-one-patient-out share one code path. The M models train
in lockstep as one stacked network (:class:`StackedSpectralNet`: every weight with a
leading model axis, batched matmuls): a 25-band network's step is all per-op overhead,
so M models cost about what one does. Adam is elementwise, and a model whose epoch has
fewer batches sits out the last steps (no update at all, its Adam state untouched), so
each model trains as it would alone (:func:`train_spectral_models` is tested against
``torch.optim.Adam`` on a lone SpectralNet).

Batches: stratified (the thesis), or class-balanced (:func:`core.training.folds.balanced_batch_plan`)
with ``config.balance == "sampling"``; ``"loss"`` weights cross-entropy by inverse
class frequency of the model's training rows (``n / (C * n_c)``).
``epoch_hook(model, epoch, net)`` (1-based epoch) lets a caller score checkpoints
(inner validation of the epoch count) without keeping copies of the network.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.errors import TrainingCancelled
from core.model.spectral_net import KERNEL, SpectralNet
from core.training.folds import balanced_batch_plan, stratified_batch_plan

PROGRESS_VAL_SAMPLES = 2048


def class_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``float32 (C,)``: ``n / (C_present * n_c)``, 0 for absent classes."""
    counts = np.bincount(np.asarray(targets), minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


class StackedSpectralNet(torch.nn.Module):
    """M SpectralNets as one module: parameters ``(M, ...)`` in SpectralNet's layout, forward on ``(M, b, B)``."""

    def __init__(self, nets: list[SpectralNet]) -> None:
        super().__init__()
        self.n_bands, self.n_classes = nets[0].n_bands, nets[0].n_classes
        for name, _ in nets[0].named_parameters():
            stacked = torch.stack([dict(n.named_parameters())[name].detach() for n in nets]).clone()
            self.register_parameter(name.replace(".", "_"), torch.nn.Parameter(stacked))
        half = KERNEL // 2
        # window[i] = the KERNEL band indices around band i in the zero-padded spectrum
        self.register_buffer("window", torch.arange(self.n_bands)[:, None] + torch.arange(KERNEL)[None, :])
        self.half = half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(M, b, C)`` of spectra ``(M, b, B)`` (model m sees ``x[m]``)."""
        h, p = self.half, torch.nn.functional.pad
        cols = p(x, (h, h))[:, :, self.window]  # (M, b, B, K)
        a = torch.relu(torch.einsum("mbik,mfk->mbfi", cols, self.conv1_weight[:, :, 0, :])
                       + self.conv1_bias[:, None, :, None])  # (M, b, F, B)
        cols = p(a, (h, h))[:, :, :, self.window]  # (M, b, F, B, K)
        a = torch.relu(torch.einsum("mbcik,mfck->mbfi", cols, self.conv2_weight) + self.conv2_bias[:, None, :, None])
        pooled = self.n_bands // 2
        a = a[..., : 2 * pooled].reshape(*a.shape[:3], pooled, 2).amax(-1).flatten(2)  # MaxPool1d(2), (F, pos) order
        a = torch.relu(torch.einsum("mbj,mhj->mbh", a, self.fc1_weight) + self.fc1_bias[:, None, :])
        return torch.einsum("mbh,mch->mbc", a, self.fc2_weight) + self.fc2_bias[:, None, :]

    def to_net(self, index: int) -> SpectralNet:
        net = SpectralNet(self.n_bands, self.n_classes)
        with torch.no_grad():
            for name, param in net.named_parameters():
                param.copy_(getattr(self, name.replace(".", "_"))[index])
        return net.eval()


class _MaskedAdam:
    """torch.optim.Adam's update (defaults, no weight decay) per model, skipped for models not active this step."""

    def __init__(self, params: list[torch.Tensor], lr: float, m_models: int) -> None:
        self.params, self.lr = params, lr
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = torch.zeros(m_models, dtype=torch.float64)

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.steps += active.double()
        bc1 = (1 - beta1 ** self.steps).clamp_min(1e-300)
        bc2 = (1 - beta2 ** self.steps).clamp_min(1e-300)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            shape = (-1,) + (1,) * (p.ndim - 1)
            on = active.view(shape)
            g = p.grad
            m.copy_(torch.where(on, m * beta1 + g * (1 - beta1), m))
            v.copy_(torch.where(on, v * beta2 + g * g * (1 - beta2), v))
            step_size = (self.lr / bc1).float().view(shape)
            denom = (v.sqrt() / bc2.sqrt().float().view(shape)) + eps
            p.copy_(torch.where(on, p - step_size * m / denom, p))


class SpectralModels:
    """Trained SpectralNets, addressed like :class:`core.training.stacked_models.ModelGroups`."""

    def __init__(self, nets: list[SpectralNet]) -> None:
        self.nets = nets

    def predict_rows(self, inputs: torch.Tensor, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Model m's class indices for samples ``rows[m]``."""
        out = []
        with torch.no_grad():
            for net, r in zip(self.nets, rows):
                x = inputs.index_select(0, torch.from_numpy(np.asarray(r, dtype=np.int64)))
                out.append(net.eval()(x).argmax(1).numpy() if len(r) else np.zeros(0, np.int64))
        return out

    def to_net(self, index: int) -> SpectralNet:
        return self.nets[index].eval()

    def close(self) -> None:
        """Nothing to release (no worker threads); kept for the shared API."""


def train_spectral_models(
    inputs: torch.Tensor,
    targets: np.ndarray,
    train_rows: list[np.ndarray],
    val_rows: list[np.ndarray] | None,
    config,
    *,
    n_classes: int,
    stage: str,
    progress: Callable | None,
    should_stop: Callable[[], bool] | None,
    history: list[dict],
    model_ids: list[int] | None = None,
    epoch_hook: Callable[[int, int, SpectralNet], None] | None = None,
) -> SpectralModels:
    """Train ``len(train_rows)`` SpectralNets (see the module docstring). ``inputs``: float32 ``(N, B, 1, 1)``."""
    from core.training.trainer import TrainingProgress

    m_models = len(train_rows)
    ids = list(range(m_models)) if model_ids is None else list(model_ids)
    if len(ids) != m_models:
        raise ValueError(f"{len(ids)} model ids for {m_models} models")
    x = inputs.reshape(inputs.shape[0], -1)
    t = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # initial weights drawn in model order from one stream, as Conv2DNet's
        all_nets = [SpectralNet(x.shape[1], n_classes) for _ in range(max(ids) + 1)]
    stack = StackedSpectralNet([all_nets[i] for i in ids])
    optimiser = _MaskedAdam(list(stack.parameters()), config.lr, m_models)
    plan_fn = balanced_batch_plan if config.balance == "sampling" else stratified_batch_plan
    rngs = [np.random.default_rng([config.seed, 1, i]) for i in ids]
    weights = torch.ones(m_models, n_classes)
    if config.balance == "loss":
        weights = torch.stack([torch.from_numpy(class_weights(targets[r], n_classes)) for r in train_rows])
    probe = None
    if val_rows is not None:
        probe = [np.sort(rngs[m].permutation(v)[:PROGRESS_VAL_SAMPLES]) for m, v in enumerate(val_rows)]
    b = config.batch_size
    for epoch in range(config.epochs):
        plans = [np.asarray(train_rows[m])[plan_fn(targets[train_rows[m]], b, rngs[m])] for m in range(m_models)]
        n_steps = max(len(p) for p in plans)
        table = np.stack([np.concatenate([p, np.repeat(p[:1], n_steps - len(p), axis=0)]) for p in plans], 1)
        active = torch.from_numpy(np.stack([np.arange(n_steps) < len(p) for p in plans], 1))  # (steps, M)
        table_t = torch.from_numpy(table)  # (steps, M, b)
        loss_sum = torch.zeros(m_models, dtype=torch.float64)
        stack.train()
        for j in range(n_steps):
            if should_stop is not None and should_stop():
                raise TrainingCancelled("training cancelled")
            rows = table_t[j]
            logits = stack(x[rows])  # (M, b, C)
            target = t[rows]  # (M, b)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, n_classes), target.reshape(-1),
                                                   reduction="none").view(m_models, b)
            w = torch.gather(weights, 1, target)  # per-sample class weight; 1 without balance="loss"
            per_model = (ce * w).sum(1) / w.sum(1)  # F.cross_entropy(weight=...)'s weighted mean
            stack.zero_grad(set_to_none=False)
            (per_model * active[j]).sum().backward()
            optimiser.step(active[j])
            loss_sum += per_model.detach().double() * active[j]
        nets = [stack.to_net(m) for m in range(m_models)]
        for m, net in enumerate(nets):
            val = None
            if probe is not None and probe[m].size:
                with torch.no_grad():
                    val = float((net(x[probe[m]]).argmax(1) == t[probe[m]]).float().mean())
            record = TrainingProgress(stage=stage, fold=None if val_rows is None else ids[m], epoch=epoch + 1,
                                      epochs=config.epochs, loss=float(loss_sum[m]) / len(plans[m]), val_oacc=val,
                                      fraction=(epoch + 1) / config.epochs)
            history.append({"fold": record.fold, "epoch": record.epoch, "loss": record.loss, "val_oacc": val})
            if progress is not None:
                progress(record)
            if epoch_hook is not None:
                epoch_hook(m, epoch + 1, net)
    return SpectralModels([stack.to_net(m) for m in range(m_models)])
