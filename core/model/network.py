"""Conv2DNet, exactly as the seed thesis, and its fully convolutional twin.

Patch network (input ``(N, B, p, p)``, B = 25 bands, p = 7):
``Conv2d(B->16, k=2) -> MaxPool2d(2) -> ReLU -> Flatten(144) -> Linear(144, 64) -> ReLU -> Linear(64, C)``.
Flatten order is PyTorch's (channel, row, col). Softmax gives probabilities.

:class:`DenseConv2DNet` computes the same logits for every pixel of a whole cube
in one pass, without building patches: the 2x2 max-pool runs with stride 1, so
the pooled cell ``(a, b)`` of the patch centred on pixel ``(i, j)`` sits at
``(i + 2a, j + 2b)`` of the dense pooled map; ``fc1`` therefore becomes a
``q x q`` convolution with dilation 2 (``q = (p - 1) // 2``) and ``fc2`` a 1x1
convolution. The cube is padded by ``p // 2`` on each side so border pixels get
the same patches the per-patch path builds with the same padding mode.

Border padding defaults to "reflect" (mirror without repeating the edge pixel)
and is recorded in every model file as ``padding``: zero padding would feed
all-zero spectra, which RMS normalisation never produces, into border patches;
reflect keeps them made of real neighbouring spectra and texture.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from core.defaults import PATCH_SIZE  # thesis default, one place; re-exported for callers

N_FILTERS = 16
HIDDEN = 64

# Padding modes of border pixels: name stored in model files -> torch.nn.functional.pad mode.
# "reflect" (the default) mirrors without repeating the edge, like numpy's "reflect".
PADDING_MODES = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant"}
# The same modes in numpy.pad's vocabulary (for the per-patch path and tests).
NUMPY_PADDING_MODES = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}


def pooled_size(patch_size: int) -> int:
    """Side of the pooled map of a ``p x p`` patch: conv k=2 -> p-1, max-pool 2 (floor) -> (p-1)//2."""
    return (patch_size - 1) // 2


def check_padding(padding: str) -> str:
    """``padding`` if it is a known mode, else ``ValueError`` naming the known ones."""
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r} (known: {', '.join(PADDING_MODES)})")
    return padding


class Conv2DNet(nn.Module):
    """The thesis's patch classifier. Parameter names are the model-file tensor names."""

    def __init__(self, n_bands: int = 25, n_classes: int = 5, patch_size: int = PATCH_SIZE) -> None:
        super().__init__()
        if patch_size < 3:
            raise ValueError(f"patch_size must be >= 3, got {patch_size}")
        if n_bands < 1 or n_classes < 1:
            raise ValueError(f"n_bands and n_classes must be >= 1, got {n_bands} and {n_classes}")
        self.n_bands, self.n_classes, self.patch_size = n_bands, n_classes, patch_size
        pooled = pooled_size(patch_size)
        self.conv = nn.Conv2d(n_bands, N_FILTERS, kernel_size=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(N_FILTERS * pooled * pooled, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, n_classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` for patches ``(N, B, p, p)``."""
        x = torch.relu(self.pool(self.conv(patches)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class DenseConv2DNet(nn.Module):
    """Fully convolutional equivalent of a :class:`Conv2DNet` for whole cubes.

    ``forward`` takes a cube batch ``(N, B, H, W)`` (unpadded) and returns logits
    ``(N, C, H, W)``: the logits Conv2DNet gives the ``p x p`` patch centred on each
    pixel, the image padded by ``p // 2`` with ``padding``. Needs an odd patch size
    (a centred patch) and, for "reflect", ``H, W > p // 2``.
    """

    def __init__(self, n_bands: int = 25, n_classes: int = 5, patch_size: int = PATCH_SIZE, *, padding: str = "reflect"):
        super().__init__()
        if patch_size < 3 or patch_size % 2 == 0:
            raise ValueError(f"dense inference needs an odd patch_size >= 3 (a patch centred on the pixel), got {patch_size}")
        self.n_bands, self.n_classes, self.patch_size = n_bands, n_classes, patch_size
        self.padding = check_padding(padding)
        q = pooled_size(patch_size)
        self.conv = nn.Conv2d(n_bands, N_FILTERS, kernel_size=2)
        self.pool = nn.MaxPool2d(2, stride=1)
        self.fc1 = nn.Conv2d(N_FILTERS, HIDDEN, kernel_size=q, dilation=2)
        self.fc2 = nn.Conv2d(HIDDEN, n_classes, kernel_size=1)

    @classmethod
    def from_patch_model(cls, model: Conv2DNet, *, padding: str = "reflect") -> "DenseConv2DNet":
        """The dense twin of ``model``, sharing no storage with it (weights copied and reshaped)."""
        dense = cls(model.n_bands, model.n_classes, model.patch_size, padding=padding)
        q = pooled_size(model.patch_size)
        with torch.no_grad():
            dense.conv.weight.copy_(model.conv.weight)
            dense.conv.bias.copy_(model.conv.bias)
            # Linear(16*q*q -> 64) flattens (channel, row, col): the same order as a conv kernel (out, in, kh, kw).
            dense.fc1.weight.copy_(model.fc1.weight.reshape(HIDDEN, N_FILTERS, q, q))
            dense.fc1.bias.copy_(model.fc1.bias)
            dense.fc2.weight.copy_(model.fc2.weight.reshape(model.n_classes, HIDDEN, 1, 1))
            dense.fc2.bias.copy_(model.fc2.bias)
        return dense.eval()

    def forward(self, cube: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C, H, W)`` for cubes ``(N, B, H, W)``."""
        if cube.ndim != 4 or cube.shape[1] != self.n_bands:
            raise ValueError(f"expected a cube batch (N, {self.n_bands}, H, W), got shape {tuple(cube.shape)}")
        half = self.patch_size // 2
        if self.padding == "reflect" and min(cube.shape[-2:]) <= half:
            raise ValueError(
                f"cube {cube.shape[-2]}x{cube.shape[-1]} is too small for reflect padding of {half} "
                f"(patch size {self.patch_size})"
            )
        x = F.pad(cube, (half, half, half, half), mode=PADDING_MODES[self.padding])
        return self.forward_padded(x)

    def forward_padded(self, padded: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C, H, W)`` for cubes already padded by ``p // 2`` on each side ``(N, B, H+p-1, W+p-1)``."""
        # channels_last at every stage: oneDNN convolutions run 2-4x faster on it
        # than on NCHW, and a (H, W, B) numpy cube is channels_last without a copy.
        cl = torch.channels_last
        x = self.conv(padded.contiguous(memory_format=cl)).contiguous(memory_format=cl)
        x = torch.relu(self.pool(x)).contiguous(memory_format=cl)
        x = torch.relu(self.fc1(x)).contiguous(memory_format=cl)
        return self.fc2(x)
