"""Classifying with the ensemble of double cross-validation's outer-fold models.

Double cross-validation trains one winner per outer fold (``core.training.double_cv``);
training keeps them in the model file (``ensemble.<i>.*`` tensors, see
:mod:`core.model.files`) with each one's temperature fitted on its own validation fold.
The ensemble's probabilities are the mean of the members' calibrated probabilities; its
labels their argmax. The single model stays the default (live mode and the first map
keep their speed): :func:`with_ensemble` turns the ensemble on for one loaded model, and
costs one dense pass per member (docs/benchmarks/uncertainty.md).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.errors import ModelFileError
from core.model.files import LoadedModel, ModelInfo


def with_ensemble(model: LoadedModel, on: bool = True) -> LoadedModel:
    """``model`` set to classify with its ensemble (``on``) or its single network.

    ``ModelFileError`` naming the file when ``on`` and the file holds no ensemble (trained
    without double cross-validation, or before ensembles were kept).
    """
    if on and not model.members:
        raise ModelFileError(
            model.path if model.path is not None else model.info.name,
            f"model {model.info.name!r} v{model.info.version} holds no ensemble "
            "(train it with double cross-validation to keep the outer-fold models)",
        )
    return model if model.use_ensemble == on else replace(model, use_ensemble=on)


def resolve_model_ensemble(explicit, configured=None, *, ensemble: bool = False) -> LoadedModel:
    """:func:`core.model.choice.resolve_model` (one model rule), then :func:`with_ensemble` when ``ensemble``."""
    from core.model.choice import resolve_model

    model = resolve_model(explicit, configured)
    return with_ensemble(model) if ensemble else model


def ensemble_of(model: LoadedModel, members, temperatures) -> LoadedModel:
    """``model`` with ``members`` (Conv2DNet, same shape) and their ``temperatures`` attached and turned on."""
    members, temperatures = tuple(members), tuple(float(t) for t in temperatures)
    if not members or len(members) != len(temperatures):
        raise ValueError(f"an ensemble needs >= 1 member and one temperature each, got {len(members)} and {len(temperatures)}")
    if any(not t > 0 for t in temperatures):
        raise ValueError(f"temperatures must be positive, got {temperatures}")
    return replace(model, members=members, member_temperatures=temperatures, use_ensemble=True)


def ensemble_info(info: ModelInfo, n_members: int) -> ModelInfo:
    """The identity a map made by the ensemble carries: the file's, its name saying "ensemble of N"."""
    return replace(info, name=f"{info.name} (ensemble of {n_members})")


def predict_ensemble(model: LoadedModel, cube, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean calibrated probabilities ``float32 (H, W, C)`` and labels ``uint8 (H, W)`` of ``model.members``.

    ``cube``: a :class:`core.spectral.chain.Cube` (label 0, probabilities 0 where invalid) or
    a float ``(H, W, B)`` array. Each member runs :func:`core.model.inference.predict_dense`
    with its own temperature.
    """
    from core.model.inference import predict_dense

    if not model.members:
        raise ValueError(f"model {model.info.name!r} holds no ensemble members")
    info = model.info
    total = None
    for net, temperature in zip(model.members, model.member_temperatures):
        probs, _ = predict_dense(net, cube, padding=info.padding, class_ids=info.class_ids, threads=threads,
                                 temperature=temperature)
        total = probs if total is None else total + probs
    mean = (total / len(model.members)).astype(np.float32)
    labels = np.asarray(info.class_ids, dtype=np.uint8)[mean.argmax(axis=-1)]
    valid = getattr(cube, "valid", None)
    if valid is not None:
        labels[~valid] = 0  # probabilities there are already 0 (each member's are)
    return mean, labels
