"""Check a scoring endpoint's answer before anything draws or saves it.

An endpoint is another program on another machine: its answer may belong to
another capture (wrong shape), another model (class ids this table does not
know) or a broken deployment (no model identity). ``classify_remote_or_local``
calls :func:`check_result` on every remote answer, so the CLI and the GUI reject
the same answers, and a rejected answer falls back to local like a failed call.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.classes import class_table
from remote.scoring_client import RemoteError


class ResultRejected(RemoteError, ValueError):
    """The endpoint answered, but the answer does not fit the capture or the model."""

    def __init__(self, problem: str, *, url: str | None = None) -> None:
        where = f"endpoint {url}" if url else "endpoint"
        super().__init__(None, f"{where} answer rejected: {problem}", url=url)


def expected_cube_shape(prepared_or_capture, profile_name: str | None = None) -> tuple[int, int]:
    """``(H, W)`` of the cube of a :class:`core.model.inference.Prepared` (its cube) or a
    :class:`core.capture.files.Capture` (its camera profile's cube, without preprocessing)."""
    cube = getattr(prepared_or_capture, "cube", None)
    if cube is not None:
        return tuple(int(n) for n in cube.data.shape[:2])
    from core.capture.camera_profiles import resolve_profile

    h, w, _bands = resolve_profile(prepared_or_capture.metadata, profile_name).cube_shape
    return int(h), int(w)


def check_result(
    result,
    *,
    cube_shape: tuple[int, int],
    class_ids: Iterable[int] | None = None,
    url: str | None = None,
) -> None:
    """Raise :class:`ResultRejected` unless ``result`` fits the capture and a model's class table.

    ``result`` is a :class:`core.model.inference.ClassificationResult`; ``cube_shape`` the
    capture's cube ``(H, W)``; ``class_ids`` the ids the answer may use (default: the
    ids the answer's own model identity declares). Checks, in order: model identity
    present (name, version, sha256); labels ``(H, W)`` equal to ``cube_shape``; label
    values in ``{0} | class_ids``; probabilities, when present, ``(H, W, C)`` with one
    channel per declared class, finite, in 0..1, summing to 1 on every labelled pixel, and
    agreeing with the labels (a pixel's label is a class of highest probability).
    """
    model = getattr(result, "model", None)
    missing = [k for k in ("name", "version", "sha256") if not str(getattr(model, k, "") or "").strip()]
    if model is None or missing:
        raise ResultRejected(f"no model identity ({', '.join(missing) or 'model'} missing)", url=url)
    declared = tuple(int(c) for c in getattr(model, "class_ids", ()) or ())
    allowed = tuple(int(c) for c in class_ids) if class_ids is not None else declared
    if not allowed:
        raise ResultRejected("the model identity lists no class ids", url=url)
    known = {tissue.id for tissue in class_table().classes}
    strangers = sorted(set(declared) - known)
    if strangers:
        raise ResultRejected(f"model declares class ids {strangers} this app's class table does not have", url=url)
    labels = np.asarray(result.labels)
    expected = tuple(int(n) for n in cube_shape[:2])
    if labels.ndim != 2 or labels.shape != expected:
        raise ResultRejected(f"class map shape {labels.shape} differs from the capture's cube {expected}", url=url)
    present = np.unique(labels)
    unknown = sorted(set(int(v) for v in present) - {0} - set(allowed))
    if unknown:
        raise ResultRejected(f"class ids {unknown} are not in the model's table {list(allowed)}", url=url)
    probabilities = getattr(result, "probabilities", None)
    if probabilities is not None:
        shape = np.shape(probabilities)
        # (H, W, 0): the endpoint was not asked for probabilities
        if shape != (*expected, len(declared)) and shape != (*expected, 0):
            raise ResultRejected(
                f"probabilities shape {shape} differs from (H, W, C) = {(*expected, len(declared))}", url=url)
        if shape[-1:] != (0,):
            _check_probabilities(np.asarray(probabilities), labels, declared, url)


# float32 softmax sums to 1 within a few ulps per class; a garbled answer misses by far more.
_SUM_TOLERANCE = 1e-3
# Two classes of (nearly) equal probability may be labelled either way.
_TIE_TOLERANCE = 1e-4


def _check_probabilities(probabilities: np.ndarray, labels: np.ndarray, class_ids: tuple[int, ...], url) -> None:
    """Refuse probabilities (H, W, C) that are not a distribution or disagree with ``labels`` (H, W)."""
    if probabilities.dtype.kind not in "fiu":
        raise ResultRejected(f"probabilities of type {probabilities.dtype} are not numbers", url=url)
    if not np.isfinite(probabilities).all():
        raise ResultRejected("probabilities hold NaN or infinite values", url=url)
    low, high = float(probabilities.min()), float(probabilities.max())
    if low < 0 or high > 1 + _SUM_TOLERANCE:
        raise ResultRejected(f"probabilities outside 0..1 (from {low:g} to {high:g})", url=url)
    labelled = labels != 0
    if not labelled.any():
        return
    per_pixel = probabilities[labelled]  # (N, C)
    sums = per_pixel.sum(axis=-1, dtype=np.float64)
    off = np.abs(sums - 1.0) > _SUM_TOLERANCE
    if off.any():
        raise ResultRejected(
            f"probabilities of {int(off.sum())} labelled pixel(s) do not sum to 1 (e.g. {float(sums[off][0]):.4g})", url=url
        )
    channel = np.full(256, -1, np.int64)
    channel[list(class_ids)] = np.arange(len(class_ids))
    index = channel[labels[labelled].astype(np.int64)]
    if (index < 0).any():
        raise ResultRejected("labels use class ids the probabilities have no channel for", url=url)
    chosen = per_pixel[np.arange(per_pixel.shape[0]), index]
    disagree = chosen < per_pixel.max(axis=-1) - _TIE_TOLERANCE
    if disagree.any():
        raise ResultRejected(
            f"the class map disagrees with its own probabilities on {int(disagree.sum())} pixel(s)", url=url
        )
