"""SpectralNet: a per-pixel 1-D convolutional network over the bands (no spatial context).

For labelled spectra without their image (NEMESIS ``_dataset.mat``) and wherever a
model should see one pixel at a time. Input: spectra ``(N, B)`` (or 1 x 1 "patches"
``(N, B, 1, 1)``, the training samples' layout); output: logits ``(N, C)``::

    x (N, 1, B) -> Conv1d(1->16, k=5, pad 2) -> ReLU -> Conv1d(16->16, k=5, pad 2) -> ReLU
      -> MaxPool1d(2) -> Flatten(16 * (B // 2)) -> Linear(., 64) -> ReLU -> Linear(64, C)

Why convolutions over the bands and not a linear model: healthy and tumour spectra
overlap heavily after RMS normalisation (``../shared/data/class_spectra.json``); local
band shapes (slopes, the haemoglobin dips) separate them better than one weighted sum,
and the linear SVM is the baseline it must beat (``neurohsi evaluate --baseline``).
Parameter names are the model-file tensor names (:mod:`core.model.files`).
"""
from __future__ import annotations

import torch
from torch import nn

ARCHITECTURE = "SpectralNet"
FILTERS = 16
KERNEL = 5
HIDDEN = 64
TENSOR_NAMES = ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                "fc2.weight", "fc2.bias")


def tensor_shapes(n_bands: int, n_classes: int) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of a SpectralNet of ``n_bands`` and ``n_classes``."""
    return {
        "conv1.weight": (FILTERS, 1, KERNEL), "conv1.bias": (FILTERS,),
        "conv2.weight": (FILTERS, FILTERS, KERNEL), "conv2.bias": (FILTERS,),
        "fc1.weight": (HIDDEN, FILTERS * (n_bands // 2)), "fc1.bias": (HIDDEN,),
        "fc2.weight": (n_classes, HIDDEN), "fc2.bias": (n_classes,),
    }


class SpectralNet(nn.Module):
    """Per-pixel classifier of RMS-normalised spectra ``(N, B)``."""

    patch_size = 1  # one pixel: what the model file records as its input window

    def __init__(self, n_bands: int = 25, n_classes: int = 5) -> None:
        super().__init__()
        if n_bands < 2 or n_classes < 1:
            raise ValueError(f"SpectralNet needs >= 2 bands and >= 1 class, got {n_bands} and {n_classes}")
        self.n_bands, self.n_classes = n_bands, n_classes
        self.conv1 = nn.Conv1d(1, FILTERS, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv1d(FILTERS, FILTERS, KERNEL, padding=KERNEL // 2)
        self.pool = nn.MaxPool1d(2)
        self.fc1 = nn.Linear(FILTERS * (n_bands // 2), HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, n_classes)

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` of spectra ``(N, B)`` or ``(N, B, 1, 1)``."""
        x = spectra.reshape(spectra.shape[0], 1, -1)
        if x.shape[-1] != self.n_bands:
            raise ValueError(f"expected {self.n_bands} bands per pixel, got input of shape {tuple(spectra.shape)}")
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = torch.relu(self.fc1(self.pool(x).flatten(1)))
        return self.fc2(x)


def spectral_logits(net: SpectralNet, data, *, chunk: int = 65536) -> torch.Tensor:
    """Logits ``(H, W, C)`` of every pixel of a cube ``(H, W, B)`` (float32 tensor or array), in chunks."""
    cube = torch.as_tensor(data, dtype=torch.float32)
    h, w, b = cube.shape
    flat = cube.reshape(h * w, b)
    with torch.inference_mode():
        parts = [net.eval()(flat[i : i + chunk]) for i in range(0, h * w, chunk)]
    logits = torch.cat(parts) if parts else torch.zeros(0, net.n_classes)
    return logits.reshape(h, w, net.n_classes)
