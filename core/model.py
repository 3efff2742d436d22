"""Conv2DNet, exactly as the seed thesis, and its fully convolutional twin.

Patch network (input ``(N, B, 7, 7)``, B = 25 bands):
``Conv2d(B->16, k=2) -> MaxPool2d(2) -> ReLU -> Flatten(144) -> Linear(144, 64) -> ReLU -> Linear(64, C)``.
Flatten order is PyTorch's (channel, row, col). Softmax gives probabilities.
"""
from __future__ import annotations

import torch
from torch import nn

N_FILTERS = 16
HIDDEN = 64
PATCH_SIZE = 7


class Conv2DNet(nn.Module):
    """The thesis's patch classifier. Parameter names are the model-file tensor names."""

    def __init__(self, n_bands: int = 25, n_classes: int = 5, patch_size: int = PATCH_SIZE) -> None:
        super().__init__()
        if patch_size < 3:
            raise ValueError(f"patch_size must be >= 3, got {patch_size}")
        self.n_bands, self.n_classes, self.patch_size = n_bands, n_classes, patch_size
        pooled = (patch_size - 1) // 2  # conv k=2 -> p-1, maxpool 2 (floor) -> (p-1)//2
        self.conv = nn.Conv2d(n_bands, N_FILTERS, kernel_size=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(N_FILTERS * pooled * pooled, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, n_classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` for patches ``(N, B, p, p)``."""
        x = torch.relu(self.pool(self.conv(patches)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)
