"""M independent Conv2DNets trained in lockstep, with a hand-written backward pass and Adam.

Why: at batch 16 on a CPU, training time is per-step overhead (autograd graph
building, optimizer bookkeeping, Python), not arithmetic. Writing the forward and
backward pass of this small, fixed network directly as ~35 tensor operations
roughly halves the cost of a step, and stacking M models along a leading axis
(grouped convolution, batched matrix products) trains the 25 double-cv fold
models for about the price of a few.

Mathematically each of the M models is trained exactly as a separate
``core.model.network.Conv2DNet`` with ``torch.optim.Adam`` (betas 0.9/0.999, eps 1e-8, no
weight decay) and mean cross-entropy over its own batch: the models share no
parameter, no gradient and no optimizer state (Adam is element-wise and each
model keeps its own step count). The summed loss only ever differentiates each
model's parameters through its own batch.

Parameters of all models live in one tensor ``theta`` of shape ``(M, P)``; the
layer tensors are views of it, in the model-file order
(conv.weight, conv.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from core.defaults import LEARNING_RATE
from core.model.network import HIDDEN, N_FILTERS, Conv2DNet

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _layer_shapes(n_bands: int, n_classes: int, patch_size: int) -> list[tuple[str, tuple[int, ...]]]:
    pooled = (patch_size - 1) // 2
    return [
        ("conv.weight", (N_FILTERS, n_bands, 2, 2)),
        ("conv.bias", (N_FILTERS,)),
        ("fc1.weight", (HIDDEN, N_FILTERS * pooled * pooled)),
        ("fc1.bias", (HIDDEN,)),
        ("fc2.weight", (n_classes, HIDDEN)),
        ("fc2.bias", (n_classes,)),
    ]


def _im2col_index(n_bands: int, patch_size: int) -> np.ndarray:
    """Flat indices into a ``(B, p, p)`` patch, ordered as :meth:`StackedConv2DNet._columns` needs."""
    s, p = (patch_size - 1) // 2, patch_size
    pr, pc, wr, wc, band, kr, kc = np.meshgrid(
        *(np.arange(n) for n in (s, s, 2, 2, n_bands, 2, 2)), indexing="ij"
    )
    rows, cols = 2 * pr + wr + kr, 2 * pc + wc + kc
    return (band * p * p + rows * p + cols).reshape(-1)


class StackedConv2DNet:
    """``M`` Conv2DNets ``(B bands, C classes, p x p patches)`` with their Adam states.

    ``nets`` are the initial models (their weights are copied, not shared).
    """

    def __init__(self, nets: list[Conv2DNet], *, lr: float = LEARNING_RATE) -> None:
        if not nets:
            raise ValueError("StackedConv2DNet needs at least one model")
        first = nets[0]
        self.n_bands, self.n_classes, self.patch_size = first.n_bands, first.n_classes, first.patch_size
        for net in nets:
            if (net.n_bands, net.n_classes, net.patch_size) != (self.n_bands, self.n_classes, self.patch_size):
                raise ValueError("all stacked models must have the same bands, classes and patch size")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.m = len(nets)
        self.shapes = _layer_shapes(self.n_bands, self.n_classes, self.patch_size)
        self.sizes = [math.prod(s) for _, s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
        self.n_params = self.offsets[-1]
        with torch.no_grad():
            rows = []
            for net in nets:
                state = net.state_dict()
                rows.append(torch.cat([state[name].reshape(-1).float() for name, _ in self.shapes]))
            self.theta = torch.stack(rows).contiguous()  # (M, P)
        self.exp_avg = torch.zeros_like(self.theta)
        self.exp_avg_sq = torch.zeros_like(self.theta)
        self.steps = np.zeros(self.m, dtype=np.int64)  # Adam step count per model
        self.pooled = (self.patch_size - 1) // 2
        self._col_index = torch.from_numpy(_im2col_index(self.n_bands, self.patch_size))

    @property
    def columns_per_sample(self) -> int:
        """Width of one sample's :meth:`im2col` row (K*4B float32 values)."""
        return int(self._col_index.numel())

    # -- parameter views -------------------------------------------------------------------------
    def _view(self, k: int) -> torch.Tensor:
        """Layer ``k`` of every model, ``(M, *shape)`` (a view of ``theta``)."""
        a, b = self.offsets[k], self.offsets[k + 1]
        return self.theta[:, a:b].view(self.m, *self.shapes[k][1])

    def state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Model ``index``'s weights, Conv2DNet tensor names, float32 contiguous copies."""
        row = self.theta[index]
        return {
            name: row[self.offsets[k] : self.offsets[k + 1]].reshape(shape).clone()
            for k, (name, shape) in enumerate(self.shapes)
        }

    def to_net(self, index: int) -> Conv2DNet:
        """Model ``index`` as a fresh :class:`Conv2DNet` in eval mode."""
        net = Conv2DNet(self.n_bands, self.n_classes, self.patch_size)
        net.load_state_dict(self.state_dict(index))
        return net.eval()

    # -- forward ---------------------------------------------------------------------------------
    def _columns(self, x: torch.Tensor) -> torch.Tensor:
        """im2col: patches ``(M*b, B, p, p)`` -> ``(M, b*K, 4B)`` with K = 4*s*s conv positions.

        Positions are ordered (pooled row, pooled col, window row, window col), so the
        2x2 max-pool is a max over 4 consecutive positions; columns are ordered
        (band, kernel row, kernel col) like ``conv.weight``. Conv outputs that the
        floor-mode pool drops are never computed.
        """
        n = x.shape[0]
        cols = x.reshape(n, -1).index_select(1, self._col_index)  # (M*b, K*4B); faster than x[:, idx]
        return cols.view(self.m, -1, 4 * self.n_bands)

    def im2col(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches ``(N, B, p, p)`` -> columns ``(N, K*4B)``, accepted by :meth:`step` and :meth:`logits`
        in place of patches (precomputing them once saves a gather per step, at ~3x the memory)."""
        return patches.reshape(patches.shape[0], -1).index_select(1, self._col_index)

    def _forward(self, x: torch.Tensor):
        m, f, s = self.m, N_FILTERS, self.pooled
        batch = x.shape[0] // m
        cols = x.view(m, -1, 4 * self.n_bands) if x.dim() == 2 else self._columns(x)
        wc = self._view(0).view(m, f, -1)  # (M, F, 4B)
        c = torch.baddbmm(self._view(1).unsqueeze(1), cols, wc.transpose(1, 2))  # (M, b*K, F)
        # max over each window's 4 positions; pooling a channels-last view is ~10x faster than Tensor.max(dim)
        pooled, where = torch.nn.functional.max_pool1d(c.view(-1, 4, f).transpose(1, 2), 4, return_indices=True)
        pooled, where = pooled.view(m, batch, s * s, f), where.view(m, batch, s * s, 1, f)
        r = torch.relu(pooled)
        a = r.transpose(2, 3).reshape(m, batch, f * s * s)  # flatten order (channel, row, col)
        h = torch.relu(torch.baddbmm(self._view(3).unsqueeze(1), a, self._view(2).transpose(1, 2)))
        z = torch.baddbmm(self._view(5).unsqueeze(1), h, self._view(4).transpose(1, 2))
        return cols, where, r, a, h, z

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(M, b, C)`` for patches ``(M*b, B, p, p)``, model ``m`` reading rows ``m*b:(m+1)*b``."""
        return self._forward(x)[-1]

    # -- one training step -----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, x: torch.Tensor, onehot: torch.Tensor, *, active: np.ndarray | None = None) -> torch.Tensor:
        """One Adam step of every model on its own batch; returns the summed CE loss per model ``(M,)``.

        ``x``: patches ``(M*b, B, p, p)`` or their :meth:`im2col` columns, model-major; ``onehot``: float targets ``(M, b, C)``.
        ``active``: bool ``(M,)``; inactive models (no batch left this epoch) keep
        their weights, moments and step count, exactly as if they had not stepped.
        """
        m, f, s, batch = self.m, N_FILTERS, self.pooled, onehot.shape[1]
        cols, where, r, a, h, z = self._forward(x)
        logp = torch.log_softmax(z, dim=-1)
        loss = (logp * onehot).sum((1, 2)).neg_()  # summed over the batch, per model
        # backward of each model's mean cross-entropy over its own batch
        dz = logp.exp_().sub_(onehot).mul_(1.0 / batch)
        g_w2 = torch.bmm(dz.transpose(1, 2), h)
        g_b2 = dz.sum(1)
        dh = torch.ops.aten.threshold_backward(torch.bmm(dz, self._view(4)), h, 0)
        g_w1 = torch.bmm(dh.transpose(1, 2), a)
        g_b1 = dh.sum(1)
        da = torch.bmm(dh, self._view(2)).view(m, batch, f, s * s).transpose(2, 3)
        dpool = torch.ops.aten.threshold_backward(da, r, 0)  # (M, b, s*s, F)
        dc = torch.zeros((m, batch, s * s, 4, f)).scatter_(3, where, dpool.unsqueeze(3))
        dc = dc.view(m, -1, f)
        g_wc = torch.bmm(dc.transpose(1, 2), cols)  # (M, F, 4B)
        g_bc = dc.sum(1)
        grad = torch.cat(
            [g_wc.view(m, -1), g_bc, g_w1.view(m, -1), g_b1, g_w2.view(m, -1), g_b2], dim=1
        )
        self._adam(grad, active)
        return loss

    def _adam(self, grad: torch.Tensor, active: np.ndarray | None) -> None:
        """``torch.optim.Adam`` (single-tensor formula) applied row-wise with per-model step counts."""
        beta1, beta2 = ADAM_BETAS
        if active is not None and active.all():
            active = None
        if active is not None:
            keep = torch.from_numpy(~active)
            saved = (self.theta[keep].clone(), self.exp_avg[keep].clone(), self.exp_avg_sq[keep].clone())
            self.steps[active] += 1
        else:
            self.steps += 1
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)  # lerp_ is several times slower here
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        t = self.steps
        if (t == t[0]).all():
            bc1, bc2 = 1 - beta1 ** int(t[0]), 1 - beta2 ** int(t[0])
            denom = self.exp_avg_sq.sqrt().div_(math.sqrt(bc2)).add_(ADAM_EPS)
            self.theta.addcdiv_(self.exp_avg, denom, value=-self.lr / bc1)
        else:
            # models whose step counts differ (after a masked step): per-row bias corrections
            bc1 = torch.from_numpy(1 - beta1 ** t.astype(np.float64)).float().unsqueeze(1)
            bc2 = torch.from_numpy(np.sqrt(1 - beta2 ** t.astype(np.float64))).float().unsqueeze(1)
            denom = self.exp_avg_sq.sqrt().div_(bc2).add_(ADAM_EPS)
            self.theta.sub_(self.exp_avg.div(denom).mul_(self.lr / bc1))
        if active is not None:
            self.theta[keep], self.exp_avg[keep], self.exp_avg_sq[keep] = saved


@torch.no_grad()
def predict_rows(net: StackedConv2DNet, patches: torch.Tensor, rows: list[np.ndarray], *, chunk: int = 1024) -> list[np.ndarray]:
    """Model ``m``'s class index for each sample ``rows[m]`` (indices into ``patches (N, B, p, p)``).

    Returns M int64 arrays, one per model, aligned with ``rows[m]``. Models with
    fewer rows are padded internally with their first row (or row 0) and trimmed.
    """
    if len(rows) != net.m:
        raise ValueError(f"{len(rows)} row sets for {net.m} models")
    longest = max((len(r) for r in rows), default=0)
    if longest == 0:
        return [np.zeros(0, dtype=np.int64) for _ in rows]
    table = np.zeros((net.m, longest), dtype=np.int64)
    for m, r in enumerate(rows):
        table[m, : len(r)] = r
        table[m, len(r) :] = r[0] if len(r) else 0
    table_t = torch.from_numpy(table)
    out = []
    for start in range(0, longest, chunk):
        part = table_t[:, start : start + chunk].reshape(-1)
        out.append(net.logits(patches.index_select(0, part)).argmax(-1))
    pred = torch.cat(out, dim=1).numpy()
    return [pred[m, : len(r)] for m, r in enumerate(rows)]
