"""Exports of a classification: overlay PNG, label PNG and NPZ.

The overlay PNG is drawn by :mod:`core.render` (the same picture as
``neurohsi classify`` and the service), so the legend, the model identity
(name, version, sha256 prefix, where and when it was scored) and the research-use
notice are burned into the pixels. No Qt here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.classes import UNLABELLED


def overlay_image(
    rgb: np.ndarray,
    labels: np.ndarray,
    *,
    model,
    source: str,
    palette: str,
    opacity: float,
    hidden=(),
    classified_at: str | None = None,
) -> Image.Image:
    """The overlay as the surgeon sees it: hidden classes left out (and named), the view's opacity.

    ``rgb`` uint8 (H, W, 3); ``labels`` uint8 (H, W); ``model`` a ``ModelInfo``.
    """
    from core.render import model_identity_lines, overlay_image as render_overlay

    hidden = sorted(int(c) for c in hidden)
    shown = labels
    lines = model_identity_lines(model, source=source, classified_at=classified_at)
    if hidden:
        shown = labels.copy()
        shown[np.isin(labels, hidden)] = UNLABELLED
        names = dict(zip(model.class_ids, model.class_names))
        lines = lines + ("Hidden: " + ", ".join(names.get(c, str(c)) for c in hidden),)
    return render_overlay(
        rgb,
        shown,
        class_ids=model.class_ids,
        class_names=model.class_names,
        model_lines=lines,
        palette=palette,
        alpha=float(np.clip(opacity, 0.0, 1.0)),
    )


def write_overlay_png(path: str | Path, image: Image.Image) -> Path:
    path = Path(path)
    image.save(path, format="PNG", optimize=True)
    return path


def write_labels_png(path: str | Path, labels: np.ndarray) -> Path:
    """Class map ``uint8 (H, W)`` as the project's palette PNG (``core.labels``)."""
    from core.labels import write_label_png

    return write_label_png(path, labels)


def write_npz(path: str | Path, result) -> Path:
    """``labels`` uint8 (H, W), ``probabilities`` float32 (H, W, C), ``class_ids`` and model identity."""
    path = Path(path)
    info = result.model
    with path.open("wb") as fh:
        np.savez_compressed(
            fh,
            labels=result.labels,
            probabilities=result.probabilities.astype(np.float32, copy=False),
            class_ids=np.asarray(info.class_ids, dtype=np.uint8),
            model_name=np.asarray(info.name),
            model_version=np.asarray(info.version),
            model_sha256=np.asarray(info.sha256),
            source=np.asarray(result.source),
        )
    return path
