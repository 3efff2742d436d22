"""Every file a classification or a label map is exported to: label PNG, colour PNG, overlay PNG, NPZ.

One writer per kind, used by ``neurohsi classify``, the GUI's File menu, the
labelling editor's save, dataset writing and the scoring service, so a file
looks the same wherever it was made. All writes go through
:func:`core.fileio.atomic_write`: a reader sees the old file or the complete new
one, never half of either, and a failed write leaves the old file as it was.

The pictures are drawn by :mod:`core.output.render`; this module encodes and writes them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.classes import UNLABELLED
from core.errors import DatasetError
from core.fileio import atomic_write

NPZ_LAYOUT_VERSION = 1
# Every array of the NPZ layout; :func:`read_npz` refuses a file missing any of them.
NPZ_FIELDS = (
    "layout_version",  # int64 scalar, NPZ_LAYOUT_VERSION
    "labels",  # uint8 (H, W) class ids, 0 where not classified
    "probabilities",  # float32 (H, W, C) in class_ids order; 0 where not valid
    "valid",  # bool (H, W): pixels that were classified
    "class_ids",  # uint8 (C,)
    "class_names",  # str (C,)
    "wavelengths_nm",  # float32 (B,) band centres; (0,) when unknown (e.g. a remote result)
    "model_name",  # str scalar
    "model_version",  # str scalar
    "model_sha256",  # str scalar, of the model file
    "capture_id",  # str scalar
    "classified_at",  # str scalar, ISO 8601 UTC
    "source",  # str scalar: "local" or the scoring endpoint URL
    "ood_mask",  # bool (H, W): pixels unlike the model's training spectra; all False when unavailable
    "ood_available",  # bool scalar: whether the model could check (older model files cannot)
    "quality",  # str scalar: the capture-quality report as JSON ("" when unknown); status "unusable" = shown anyway
    "camera_profile",  # str scalar: JSON {id, geometry_source, wavelengths_nominal} of the calibration used ("" remote)
    "masked_mask",  # bool (H, W): pixels not measured (clipped, invalid, no tissue), label 0; all False when unknown
)
# Fields added after layout 1 was first written: files without them read with these values.
_LATER_FIELDS = {"ood_available": False, "quality": "", "camera_profile": ""}
_STRING_FIELDS = (
    "model_name", "model_version", "model_sha256", "capture_id", "classified_at", "source", "quality", "camera_profile",
)


# -- label maps ----------------------------------------------------------------
def write_colour_png(path: str | Path, labels: np.ndarray, *, palette: str = "thesis") -> Path:
    """Write the class colours of a label map ``uint8 (H, W)`` as an RGB PNG ``(H, W, 3)``; 0 is black."""
    from PIL import Image

    from core.output.render import colour_map

    rgb = colour_map(labels, palette=palette)
    return _write_image(path, Image.fromarray(rgb, mode="RGB"))


# -- overlay -----------------------------------------------------------------------
def overlay_image(
    rgb: np.ndarray,
    labels: np.ndarray,
    *,
    model,
    classified_at: str | None = None,
    capture_id: str | None = None,
    opacity: float = 0.45,
    palette: str = "thesis",
    source: str = "local",
    hidden=(),
    ood_mask: np.ndarray | None = None,
    quality=None,
    flags=None,
):
    """The overlay picture (``PIL.Image``, RGB) as the user sees it: map over ``rgb`` at ``opacity``,
    ``hidden`` class ids left out (and named), legend, model identity, capture, research-use banner.

    ``rgb`` uint8 (H, W, 3); ``labels`` uint8 (H, W); ``model`` a ``ModelInfo``; ``opacity`` 0..1.
    ``flags``: the :func:`core.output.legend.flag_layers` of the result (not measured, out of
    distribution, uncertain), drawn hatched and listed in the legend as on screen; ``ood_mask``
    bool (H, W) alone makes the out-of-distribution layer. A ``quality`` report of status
    "unusable" (shown anyway) watermarks the whole picture with its reason.
    """
    from core.output.legend import apply_flags, legend_rows, make_layer
    from core.output.render import model_identity_lines
    from core.output.render import overlay_image as draw_overlay
    from core.output.trust_render import UNUSABLE_WATERMARK, watermark

    hidden = sorted(int(c) for c in hidden)
    lines = model_identity_lines(model, source=source, classified_at=classified_at)
    if capture_id:
        lines += (f"Capture: {capture_id}",)
    labels = np.asarray(labels)
    if flags is None:
        flags = [] if ood_mask is None else [make_layer("ood", ood_mask)]
    rows = legend_rows(labels, model.class_ids, model.class_names, flags=flags, hidden=hidden, palette=palette)
    if quality is not None and getattr(quality, "status", None) == "unusable":
        lines += (f"UNUSABLE CAPTURE: {quality.reason}",)
    shown = labels
    if hidden:
        shown = shown.copy()
        shown[np.isin(shown, hidden)] = UNLABELLED
    for layer in flags:
        if layer.fill is not None and layer.mask.any():  # no class colour under an opaque flag
            shown = np.where(layer.mask, UNLABELLED, shown).astype(np.uint8)
    rgb = apply_flags(rgb, flags)
    picture = draw_overlay(
        rgb,
        shown,
        class_ids=model.class_ids,
        class_names=model.class_names,
        model_lines=lines,
        palette=palette,
        alpha=float(np.clip(opacity, 0.0, 1.0)),
        rows=rows,
    )
    if quality is not None and getattr(quality, "status", None) == "unusable":
        from PIL import Image

        picture = Image.fromarray(watermark(np.asarray(picture), UNUSABLE_WATERMARK))
    return picture


def write_overlay_png(path: str | Path, rgb: np.ndarray, labels: np.ndarray, **options) -> Path:
    """Write :func:`overlay_image` ``(rgb, labels, **options)`` as a PNG (atomically)."""
    return _write_image(path, overlay_image(rgb, labels, **options), optimize=True)


def _write_image(path: str | Path, image, **options) -> Path:
    return atomic_write(path, lambda fh: image.save(fh, format="PNG", **options))


# -- NPZ ---------------------------------------------------------------------------
def npz_arrays(result, *, capture_id: str) -> dict[str, np.ndarray]:
    """The arrays of the NPZ layout (:data:`NPZ_FIELDS`) for a ``core.model.inference.ClassificationResult``.

    ``valid`` comes from the result's cube when it has one (local), else from
    ``labels != 0`` (every classified pixel gets a class id >= 1). The wavelengths
    come from the cube; a result without one records an empty array.
    """
    info = result.model
    labels = np.asarray(result.labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 (H, W) map, got {labels.dtype} {labels.shape}")
    cube = getattr(result, "cube", None)
    valid = getattr(result, "valid", None)
    if valid is None:
        valid = cube.valid if cube is not None else labels != UNLABELLED
    wavelengths = getattr(result, "wavelengths_nm", None)
    if wavelengths is None and cube is not None:
        wavelengths = cube.wavelengths_nm
    arrays = {
        "layout_version": np.asarray(NPZ_LAYOUT_VERSION, dtype=np.int64),
        "labels": labels,
        "probabilities": np.asarray(result.probabilities, dtype=np.float32),
        "valid": np.asarray(valid, dtype=bool),
        "class_ids": np.asarray(info.class_ids, dtype=np.uint8),
        "class_names": np.asarray(info.class_names, dtype=str),
        "wavelengths_nm": np.asarray([] if wavelengths is None else wavelengths, dtype=np.float32).reshape(-1),
        "model_name": info.name,
        "model_version": info.version,
        "model_sha256": info.sha256,
        "capture_id": capture_id,
        "classified_at": result.classified_at,
        "source": result.source,
    }
    ood = getattr(result, "ood_mask", None)
    quality = getattr(result, "quality", None)
    arrays["ood_mask"] = np.zeros(labels.shape, bool) if ood is None else np.asarray(ood, dtype=bool)
    arrays["ood_available"] = np.asarray(ood is not None)
    masked = getattr(result, "masked_mask", None)
    arrays["masked_mask"] = np.zeros(labels.shape, bool) if masked is None else np.asarray(masked, dtype=bool)
    arrays["quality"] = "" if quality is None else json.dumps(quality.to_dict())
    arrays["camera_profile"] = "" if cube is None else json.dumps(
        {"id": cube.profile_id, "geometry_source": cube.geometry_source, "wavelengths_nominal": cube.wavelengths_nominal}
    )
    for key in _STRING_FIELDS:
        arrays[key] = np.asarray(str(arrays[key]))
    for key in ("ood_mask", "masked_mask"):
        if arrays[key].shape != labels.shape:
            raise ValueError(f"{key} {arrays[key].shape} does not match labels {labels.shape}")
    if arrays["valid"].shape != labels.shape or arrays["probabilities"].shape[:2] != labels.shape:
        raise ValueError(
            f"labels {labels.shape}, valid {arrays['valid'].shape} and probabilities "
            f"{arrays['probabilities'].shape} do not match"
        )
    return arrays


def write_npz(path: str | Path, result, *, capture_id: str) -> Path:
    """Write a classification as an NPZ of :data:`NPZ_FIELDS` (no pickled objects); ``np.load`` reads it.

    Float arrays (the probabilities, 4.4 MB of float32 a full map) are stored: zlib shrinks
    them by 5 % for ~60 ms of CPU, which live mode cannot spare at 20 maps/s. Masks, labels
    and text are deflated at level 1 (they are mostly runs).
    """
    arrays = npz_arrays(result, capture_id=capture_id)
    return atomic_write(path, lambda fh: _write_npz_entries(fh, arrays))


def _write_npz_entries(fh, arrays: dict[str, np.ndarray]) -> None:
    import zipfile

    # What np.savez writes (one .npy per key), with the compression chosen per entry.
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            value = np.asanyarray(value)
            # An entry opened by name takes the archive's compression at that moment.
            archive.compression = zipfile.ZIP_STORED if value.dtype.kind == "f" else zipfile.ZIP_DEFLATED
            with archive.open(f"{key}.npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, value, allow_pickle=False)


def read_npz(path: str | Path) -> dict:
    """An NPZ written by :func:`write_npz` as a dict: arrays stay arrays, string fields become ``str``,
    ``layout_version`` an ``int``. Raises ``DatasetError`` naming the file when it is unreadable, from
    another layout version, or misses a field.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DatasetError(path, "classification file not found") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(path, f"not a readable NPZ file ({exc.__class__.__name__})") from None
    for key, default in _LATER_FIELDS.items():
        data.setdefault(key, np.asarray(default))
    for key in ("ood_mask", "masked_mask"):  # added after layout 1 was first written
        if key not in data and "labels" in data:
            data[key] = np.zeros(np.shape(data["labels"]), bool)
    missing = [key for key in NPZ_FIELDS if key not in data]
    if missing:
        raise DatasetError(path, f"not a NeuroHSI classification NPZ (missing {', '.join(missing)})")
    version = int(data["layout_version"])
    if version != NPZ_LAYOUT_VERSION:
        raise DatasetError(path, f"NPZ layout version {version} is not supported (expected {NPZ_LAYOUT_VERSION})")
    data["layout_version"] = version
    data["ood_available"] = bool(data["ood_available"])
    for key in _STRING_FIELDS:
        data[key] = str(data[key])
    return data
