"""Training hyper-parameters, validated once (no torch here: the GUI's form and the CLI import it freely).

The one settings type of a training run: the CLI builds it from flags, the GUI's form
from its fields, and a training job (``remote.training_backends.JobSpec`` holds one)
reads it from the job's ``spec.json``. Defaults are the thesis's (:mod:`core.defaults`);
:mod:`core.training.trainer` trains with them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from core import defaults

CV_MODES = ("none", "double")
MODEL_KINDS = ("conv2dnet", "spectral")  # core.model.files.MODEL_KINDS: Conv2DNet patches, SpectralNet spectra
BALANCE_MODES = ("none", "sampling", "loss")  # class balance: none (thesis), balanced batches, weighted loss


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters (the thesis's defaults). ``lr``: Adam's learning rate, in (0, 1)."""

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
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not _is_int(self.patch_size) or self.patch_size < 3 or self.patch_size % 2 == 0:
            raise ValueError(f"patch_size must be an odd integer >= 3, got {self.patch_size!r}")
        # A learning rate of 1 or more makes Adam diverge on this network: refused, not trained for hours.
        if not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and math.isfinite(self.lr)
                and 0 < self.lr < 1):
            raise ValueError(f"lr must be a number in (0, 1), got {self.lr!r}")
        if not _is_int(self.folds) or self.folds < 2:
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
        # numpy and torch seeds are unsigned.
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingConfig:
        """The inverse of :meth:`to_dict`; ValueError naming unknown keys (a typo must not train defaults)."""
        return cls(**check_fields(cls, data, what="training settings"))


def check_fields(cls: type, data: object, *, what: str) -> dict:
    """``data`` when it is a dict whose keys are all fields of dataclass ``cls``; else ValueError
    naming ``what`` and the unknown keys (read from JSON files, where a typo must not pass)."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be an object, got {type(data).__name__}")
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(sorted(unknown))}")
    return data
