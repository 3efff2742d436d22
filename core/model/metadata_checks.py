"""Validation of a model file's JSON metadata, before any tensor is read (:func:`check_meta`).

Every field is checked for type and range, class names against the class table (swapped
names refused), calibration temperatures and the out-of-distribution description; a bad
field is a one-line :class:`core.errors.ModelFileError` naming the file.
"""
from __future__ import annotations

import math

from core.errors import ModelFileError, escape_controls
from core.model.files import ARCHITECTURE, ARCHITECTURES, MAX_MEMBERS, SUPPORTED_FORMAT_VERSIONS


def check_meta(meta: dict, source) -> None:
    """``ModelFileError(source, ...)`` unless ``meta`` is a valid NeuroHSI model description."""
    from core.model.network import PADDING_MODES

    version = meta.get("format_version")
    if not isinstance(version, int) or version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelFileError(
            source,
            f"unsupported NeuroHSI model format version {version!r} "
            f"(this NeuroHSI reads {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})",
        )
    if meta.get("architecture") not in ARCHITECTURES:
        raise ModelFileError(source, f"unsupported architecture {meta.get('architecture')!r} "
                                     f"(expected one of {', '.join(ARCHITECTURES)})")
    kind, inputs = ARCHITECTURES[meta["architecture"]]
    if meta.get("model_kind", kind) != kind or meta.get("inputs", inputs) != inputs:
        raise ModelFileError(source, f"model kind {meta.get('model_kind')!r} / inputs {meta.get('inputs')!r} do not "
                                     f"match architecture {meta['architecture']!r} ({kind}, {inputs})")
    for key, kind in (("name", str), ("version", str), ("profile_id", str), ("created", str), ("padding", str)):
        if not isinstance(meta.get(key), kind):
            raise ModelFileError(source, f"metadata field {key!r} missing or not a {kind.__name__}")
    for key in ("patch_size", "n_bands"):
        value = meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ModelFileError(source, f"metadata field {key!r} must be a positive integer, got {value!r}")
    if meta["patch_size"] < 3 and meta["architecture"] == ARCHITECTURE:
        raise ModelFileError(source, f"patch size {meta['patch_size']} is below the minimum of 3")
    if meta["padding"] not in PADDING_MODES:
        raise ModelFileError(source, f"unknown padding mode {meta['padding']!r} (known: {', '.join(PADDING_MODES)})")
    ids, names = meta.get("class_ids"), meta.get("class_names")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and 1 <= i <= 255 for i in ids):
        raise ModelFileError(source, f"class_ids must be a non-empty list of ids 1..255, got {ids!r}")
    if len(set(ids)) != len(ids):
        raise ModelFileError(source, f"class_ids repeat an id: {ids}")
    if not isinstance(names, list) or len(names) != len(ids) or not all(isinstance(n, str) for n in names):
        raise ModelFileError(source, f"class_names must be {len(ids)} strings, got {names!r}")
    _check_names_match_table(ids, names, source)
    for key in ("training", "metrics"):
        if not isinstance(meta.get(key, {}), dict):
            raise ModelFileError(source, f"metadata field {key!r} must be a JSON object")
    wavelengths = meta.get("wavelengths_nm")
    if wavelengths is not None and (
        not isinstance(wavelengths, list)
        or len(wavelengths) != meta["n_bands"]
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < 1e5 for w in wavelengths)
    ):
        raise ModelFileError(source, f"wavelengths_nm must be {meta['n_bands']} positive numbers (nm)")
    _check_calibration(meta, source)
    ood = meta.get("ood")
    if ood is not None:
        from core.spectral.ood import OodDescription

        try:
            OodDescription.from_dict(ood, n_bands=meta["n_bands"], n_classes=len(ids))
        except ValueError as exc:
            raise ModelFileError(source, f"out-of-distribution description: {exc}") from None


def _is_temperature(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _check_calibration(meta: dict, source) -> None:
    """``temperature`` (positive) and ``ensemble`` ({"temperatures": [positive, ...]}) when present."""
    if "temperature" in meta and not _is_temperature(meta["temperature"]):
        raise ModelFileError(source, f"temperature must be a positive number, got {meta['temperature']!r}")
    ensemble = meta.get("ensemble")
    if ensemble is None:
        return
    temperatures = ensemble.get("temperatures") if isinstance(ensemble, dict) else None
    if (not isinstance(temperatures, list) or not 1 <= len(temperatures) <= MAX_MEMBERS
            or not all(_is_temperature(t) for t in temperatures)):
        raise ModelFileError(source, f"ensemble must name 1..{MAX_MEMBERS} member temperatures (positive numbers)")


def _name_forms(name: str) -> set[str]:
    """Ways a class may be named: "Venous blood" -> {"venous blood", "venous"}; "dura_mater" -> {"dura mater", "dura"}."""
    text = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    return {text, text.split(" ")[0]} if text else set()


def _check_names_match_table(ids: list[int], names: list[str], source) -> None:
    """Refuse a model whose class names belong to other ids of the class table (swapped names).

    A map painted from such a model would colour tumour as healthy. Names the table
    does not know at all ("a", "class 1") are left alone: they contradict nothing.
    """
    from core.classes import class_table

    table = {tissue.id: _name_forms(tissue.key) | _name_forms(tissue.name) for tissue in class_table().classes}
    for class_id, name in zip(ids, names):
        forms = _name_forms(name)
        # An id the table lacks is judged where the map is used (remote.result_check), not here.
        if class_id not in table or forms & table[class_id]:
            continue
        owners = sorted(other for other, known in table.items() if other != class_id and forms & known)
        if owners:
            raise ModelFileError(
                source,
                f"class {class_id} is named {escape_controls(name[:60])!r}, the class table's name for class {owners[0]}: "
                "class names and ids are swapped (a map would show the wrong tissue)",
            )
