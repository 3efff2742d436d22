"""Training hyper-parameters, validated (no torch here: the GUI's form and the CLI import it freely).

Defaults are the thesis's (:mod:`core.defaults`); :mod:`core.training.trainer` trains with them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from core import defaults

CV_MODES = ("none", "double")
MODEL_KINDS = ("conv2dnet", "spectral")  # core.model.files.MODEL_KINDS: Conv2DNet patches, SpectralNet spectra
BALANCE_MODES = ("none", "sampling", "loss")  # class balance: none (thesis), balanced batches, weighted loss


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters (the thesis's defaults)."""

    epochs: int = defaults.EPOCHS
    batch_size: int = defaults.BATCH_SIZE
    patch_size: int = defaults.PATCH_SIZE
    lr: float = defaults.LEARNING_RATE
    folds: int = defaults.FOLDS
    cross_validation: str = "none"  # "none" (one model) or "double" (folds x folds models)
    seed: int = defaults.SEED
    model_kind: str = "conv2dnet"  # the thesis's Conv2DNet (default) or the per-pixel SpectralNet
    balance: str = "none"  # "sampling": class-balanced batches; "loss": inverse-frequency weighted cross-entropy

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.patch_size, int) or self.patch_size < 3 or self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be an odd integer >= 3, got {self.patch_size!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ValueError(f"folds must be an integer >= 2, got {self.folds!r}")
        if self.cross_validation not in CV_MODES:
            raise ValueError(f"cross_validation must be one of {CV_MODES}, got {self.cross_validation!r}")
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(f"model kind must be one of {', '.join(MODEL_KINDS)}, got {self.model_kind!r}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, got {self.balance!r}")
        if self.balance == "loss" and self.model_kind == "conv2dnet":
            # the stacked Conv2DNet engine computes the plain cross-entropy gradient in closed form
            raise ValueError("balance 'loss' is for the spectral model; Conv2DNet balances by 'sampling'")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)
