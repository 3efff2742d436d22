"""NeuroHSI model files: a network's state dict in ``.safetensors`` plus JSON metadata.

Two model kinds; the metadata records ``architecture``, ``model_kind`` and the ``inputs``
it needs, so the app can refuse in one line a model that cannot run on what is open:

* ``conv2dnet`` (architecture ``Conv2DNet``, inputs ``patches``): p x p neighbourhoods,
  needs an image (raw capture or preprocessed cube);
* ``spectral`` (architecture ``SpectralNet``, :mod:`core.model.spectral_net`, inputs
  ``spectra``): one pixel's spectrum, runs on any capture, labelled spectra included.

Files written before kinds existed have no ``model_kind``: they are Conv2DNet models.
Conv2DNet tensors: ``conv.weight`` (16, B, 2, 2), ``conv.bias`` (16,), ``fc1.weight``
(64, 16*q*q) with ``q = (p - 1) // 2`` (144 for p = 7), ``fc1.bias`` (64,),
``fc2.weight`` (C, 64), ``fc2.bias`` (C,), all float32. Safetensors metadata is
``dict[str, str]``: NeuroHSI stores one JSON document under the key ``"neurohsi"``.

A file may also hold an ensemble (:mod:`core.model.ensemble`): the outer-fold models of
double cross-validation as tensors ``ensemble.<i>.<name>`` (same names and shapes) and
``"ensemble": {"temperatures": [...]}`` in the metadata; ``"temperature"`` (default 1) is
the main network's temperature-scaling divisor of its logits (``core.training.calibration``).

Loading parses the safetensors header itself and reads tensors with
``safetensors.numpy``: a model file is never unpickled, and any file that is not
a NeuroHSI model gets a one-line :class:`ModelFileError` naming it.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.clock import utc_now_iso
from core.errors import ModelFileError, escape_controls
from core.fileio import atomic_write

if TYPE_CHECKING:  # torch is imported only when a model is built, so ModelInfo stays light
    from core.model.network import Conv2DNet

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
ARCHITECTURE = "Conv2DNet"
METADATA_KEY = "neurohsi"
TENSOR_NAMES = ("conv.weight", "conv.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
# architecture -> (model kind, inputs it needs); the CLI's --model-kind names the kinds.
ARCHITECTURES = {"Conv2DNet": ("conv2dnet", "patches"), "SpectralNet": ("spectral", "spectra")}
MODEL_KINDS = {kind: arch for arch, (kind, _) in ARCHITECTURES.items()}
MEMBER_PREFIX = "ensemble."  # ensemble member i's tensors are "ensemble.<i>.<name>"
MAX_MEMBERS = 25  # double-cv with K folds keeps K outer models; 25 = all fold models of 5 x 5
# A patch-7 model is ~45 KB; even patch 31 stays under 2 MB. Refusing huge files
# early keeps a wrong path (a video, a disk image) from being read into memory.
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ModelInfo:
    """Identity and contract of a model file."""

    name: str
    version: str
    sha256: str  # of the .safetensors file bytes
    format_version: int
    architecture: str  # "Conv2DNet"
    patch_size: int
    n_bands: int
    padding: str  # padding mode of border pixels: "reflect", "replicate" or "zeros"
    class_ids: tuple[int, ...]
    class_names: tuple[str, ...]
    profile_id: str
    created: str  # ISO 8601 UTC
    # dicts are left out of the hash (sha256 already identifies the file) so ModelInfo can key caches
    training: dict = field(default_factory=dict, hash=False)  # data ids, hyper-parameters
    metrics: dict = field(default_factory=dict, hash=False)  # OACC etc.
    # Band centres (nm) of the cubes it was trained on; None in files written before they were recorded.
    wavelengths_nm: tuple[float, ...] | None = None
    # core.spectral.ood description of the training spectra; None in older files ("check unavailable").
    ood: dict | None = field(default=None, hash=False, compare=False)
    model_kind: str = "conv2dnet"  # "conv2dnet" or "spectral" (MODEL_KINDS)
    inputs: str = "patches"  # "patches" (needs an image) or "spectra" (one pixel at a time)
    # Temperature scaling fitted on validation data (core.training.calibration); 1.0 = uncalibrated.
    temperature: float = 1.0
    ensemble_size: int = 0  # ensemble members in the file (core.model.ensemble); 0 = none

    def __post_init__(self) -> None:
        # JSON (the scoring service's answer) gives lists; tuples keep ModelInfo hashable.
        if self.wavelengths_nm is not None and not isinstance(self.wavelengths_nm, tuple):
            object.__setattr__(self, "wavelengths_nm", tuple(float(w) for w in self.wavelengths_nm))

    @property
    def ood_available(self) -> bool:
        """Whether the file describes its training spectra (``core.spectral.ood``); older files do not."""
        return self.ood is not None

    @property
    def n_classes(self) -> int:
        return len(self.class_ids)

    @property
    def label(self) -> str:
        """``name vversion (sha256 prefix)`` for status bars, overlays and logs (control characters escaped)."""
        return escape_controls(f"{self.name} v{self.version} ({self.sha256[:12]})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["class_ids"], d["class_names"] = list(self.class_ids), list(self.class_names)
        d["wavelengths_nm"] = None if self.wavelengths_nm is None else list(self.wavelengths_nm)
        d.pop("ood")  # large and internal; ``ood_available`` says whether it is there
        d["ood_available"] = self.ood is not None
        return d


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: the patch network (eval mode) and its info."""

    net: "Conv2DNet"  # or a core.model.spectral_net.SpectralNet (info.model_kind says which)
    info: ModelInfo
    path: Path | None = None
    # Ensemble members (Conv2DNet, eval mode) and their temperatures, as stored in the file;
    # classification uses them only when ``use_ensemble`` (core.model.ensemble.with_ensemble).
    members: tuple = ()
    member_temperatures: tuple[float, ...] = ()
    use_ensemble: bool = False


def save_model(
    path: str | Path,
    net: "Conv2DNet",
    *,
    name: str,
    class_ids,
    class_names,
    profile_id: str,
    training: dict | None = None,
    metrics: dict | None = None,
    padding: str = "reflect",
    version: str = "1",
    created: str | None = None,
    wavelengths_nm=None,
    ood: dict | None = None,
    temperature: float | None = None,
    ensemble: list | None = None,
) -> ModelInfo:
    """Write ``net`` and its metadata to ``path`` (``.safetensors``); return the file's :class:`ModelInfo`.

    ``training`` and ``metrics`` must be JSON-serialisable. ``created`` defaults to
    now (UTC); pass it to make the file bytes (and sha256) reproducible.
    ``wavelengths_nm`` (B,) are the band centres of the training cubes (checked at
    classification); ``ood`` is a :func:`core.spectral.ood.fit_ood` description (``to_dict()``).
    ``temperature``: the fitted temperature of ``net`` (None: not calibrated); ``ensemble``:
    ``[(member_net, temperature), ...]`` of the same shape as ``net`` (double-cv outer-fold models).
    """
    from safetensors.numpy import save

    from core.model.network import PADDING_MODES

    architecture = type(net).__name__ if type(net).__name__ in ARCHITECTURES else ARCHITECTURE
    kind, inputs = ARCHITECTURES[architecture]
    class_ids = tuple(int(c) for c in class_ids)
    class_names = tuple(str(n) for n in class_names)
    if len(class_ids) != net.n_classes or len(class_names) != net.n_classes:
        raise ValueError(
            f"the network has {net.n_classes} classes but {len(class_ids)} class ids and {len(class_names)} names were given"
        )
    if padding not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {padding!r} (known: {', '.join(PADDING_MODES)})")
    meta = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "model_kind": kind,
        "inputs": inputs,
        "name": str(name),
        "version": str(version),
        "patch_size": int(net.patch_size),
        "n_bands": int(net.n_bands),
        "padding": padding,
        "class_ids": list(class_ids),
        "class_names": list(class_names),
        "profile_id": str(profile_id),
        "created": created or utc_now_iso(),
        "training": training or {},
        "metrics": metrics or {},
    }
    if wavelengths_nm is not None:
        meta["wavelengths_nm"] = [float(w) for w in wavelengths_nm]
    if ood is not None:
        meta["ood"] = ood
    if temperature is not None:
        meta["temperature"] = float(temperature)
    members = list(ensemble or [])
    if members:
        meta["ensemble"] = {"temperatures": [float(t) for _, t in members]}
    from core.model.metadata_checks import check_meta

    check_meta(meta, "<new model>")
    tensors = _tensors_of(net, architecture)
    for index, (member, _) in enumerate(members):
        if (member.n_bands, member.n_classes, member.patch_size) != (net.n_bands, net.n_classes, net.patch_size):
            raise ValueError(f"ensemble member {index} differs in bands, classes or patch size from the model")
        tensors.update({f"{MEMBER_PREFIX}{index}.{k}": v for k, v in _tensors_of(member, architecture).items()})
    data = save(tensors, metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})
    atomic_write(path, data)  # a reader (the GUI, the service) never sees half a model
    return _info(meta, hashlib.sha256(data).hexdigest())


def _tensors_of(net, architecture: str) -> dict[str, np.ndarray]:
    state = net.state_dict()
    return {k: state[k].detach().cpu().numpy().astype(np.float32, copy=False) for k in _tensor_names(architecture)}


def load_model(path: str | Path) -> LoadedModel:
    """Read a NeuroHSI model file. ``ModelFileError(path, problem)`` for any bad file; never unpickles."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, "model file not found")
    if not path.is_file():
        raise ModelFileError(path, "is not a file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFileError(path, f"too large for a NeuroHSI model ({size} bytes)")
    data = path.read_bytes()
    loaded = load_model_bytes(data, source=path)
    return replace(loaded, path=path)


def load_model_bytes(data: bytes, *, source: str | Path = "<bytes>") -> LoadedModel:
    """Like :func:`load_model` for the file's bytes (e.g. a downloaded model); ``source`` names it in errors."""
    from safetensors.numpy import load

    header = _read_header(data, source)
    raw_meta = header.get("__metadata__") or {}
    if METADATA_KEY not in raw_meta:
        raise ModelFileError(source, "safetensors file without NeuroHSI metadata (not a NeuroHSI model)")
    try:
        meta = json.loads(raw_meta[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(source, f"NeuroHSI metadata is not valid JSON ({str(exc)[:120]})") from None
    except ValueError:  # "Exceeds the limit (4300 digits)"
        raise ModelFileError(source, "NeuroHSI metadata holds a number with more than 4300 digits") from None
    except RecursionError:
        raise ModelFileError(source, "NeuroHSI metadata is nested too deeply (not a NeuroHSI model)") from None
    if not isinstance(meta, dict):
        raise ModelFileError(source, "NeuroHSI metadata is not a JSON object")
    from core.model.metadata_checks import check_meta

    check_meta(meta, source)
    architecture = meta["architecture"]
    names = sorted(k for k in header if k != "__metadata__" and not k.startswith(MEMBER_PREFIX))
    n_members = len(meta.get("ensemble", {}).get("temperatures", []))
    member_names = sorted(k for k in header if k.startswith(MEMBER_PREFIX))
    expected_members = sorted(f"{MEMBER_PREFIX}{i}.{k}" for i in range(n_members) for k in _tensor_names(architecture))
    if member_names != expected_members:
        raise ModelFileError(source, f"ensemble tensors do not match the {n_members} members the metadata names")
    if names != sorted(_tensor_names(architecture)):
        raise ModelFileError(
            source, f"tensor names {names} do not match a {architecture} ({', '.join(_tensor_names(architecture))})"
        )
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError for corrupt payloads
        raise ModelFileError(source, f"corrupt safetensors data ({exc})") from None
    net = _build_net(tensors, meta, source)
    members = tuple(_build_net(tensors, meta, source, prefix=f"{MEMBER_PREFIX}{i}.") for i in range(n_members))
    temperatures = tuple(float(t) for t in meta.get("ensemble", {}).get("temperatures", []))
    return LoadedModel(net, _info(meta, hashlib.sha256(data).hexdigest()), None, members, temperatures)


def _build_net(tensors: dict, meta: dict, source, *, prefix: str = "") -> "Conv2DNet":
    """The network (Conv2DNet or SpectralNet) of tensors ``prefix + name``, every shape, dtype and value
    checked (eval mode)."""
    from core.model.network import HIDDEN, N_FILTERS, Conv2DNet, pooled_size

    architecture = meta["architecture"]
    n_classes = len(meta["class_ids"])
    q = pooled_size(meta["patch_size"])
    expected = {
        "conv.weight": (N_FILTERS, meta["n_bands"], 2, 2),
        "conv.bias": (N_FILTERS,),
        "fc1.weight": (HIDDEN, N_FILTERS * q * q),
        "fc1.bias": (HIDDEN,),
        "fc2.weight": (n_classes, HIDDEN),
        "fc2.bias": (n_classes,),
    }
    if architecture == "SpectralNet":
        from core.model.spectral_net import tensor_shapes

        expected = tensor_shapes(meta["n_bands"], n_classes)
    import torch

    state = {}
    for key, shape in expected.items():
        array = tensors[prefix + key]
        if tuple(array.shape) != shape:
            raise ModelFileError(
                source,
                f"tensor {prefix}{key} has shape {tuple(array.shape)}, expected {shape} "
                f"(patch {meta['patch_size']}, {meta['n_bands']} bands, {n_classes} classes)",
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ModelFileError(source, f"tensor {prefix}{key} has dtype {array.dtype}, expected float32")
        if not np.isfinite(array).all():
            raise ModelFileError(source, f"tensor {prefix}{key} holds NaN or infinite values")
        state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if architecture == "SpectralNet":
        from core.model.spectral_net import SpectralNet

        net = SpectralNet(meta["n_bands"], n_classes)
    else:
        net = Conv2DNet(meta["n_bands"], n_classes, meta["patch_size"])
    net.load_state_dict(state)
    return net.eval()


def _tensor_names(architecture: str) -> tuple[str, ...]:
    if architecture == "SpectralNet":
        from core.model.spectral_net import TENSOR_NAMES as SPECTRAL_TENSORS

        return SPECTRAL_TENSORS
    return TENSOR_NAMES


def _read_header(data: bytes, source) -> dict:
    """The safetensors JSON header, checked by hand so no foreign format is ever parsed as one."""
    header = None
    if len(data) >= 8:
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            try:
                header = json.loads(data[8 : 8 + n].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                header = None
            except ValueError:  # "Exceeds the limit (4300 digits)": a JSON header, but not one we accept
                raise ModelFileError(source, "safetensors header holds a number with more than 4300 digits") from None
            except RecursionError:
                raise ModelFileError(source, "safetensors header is nested too deeply (corrupt or crafted file)") from None
    if isinstance(header, dict):
        return header
    if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":  # pickle protocol >= 2; torch.save zip archive
        raise ModelFileError(source, "looks like a pickle / torch.save file; NeuroHSI only reads .safetensors models")
    raise ModelFileError(source, "not a safetensors file (no valid header)")


def _info(meta: dict, sha256: str) -> ModelInfo:
    return ModelInfo(
        name=meta["name"],
        version=meta["version"],
        sha256=sha256,
        format_version=meta["format_version"],
        architecture=meta["architecture"],
        patch_size=meta["patch_size"],
        n_bands=meta["n_bands"],
        padding=meta["padding"],
        class_ids=tuple(meta["class_ids"]),
        class_names=tuple(meta["class_names"]),
        profile_id=meta["profile_id"],
        created=meta["created"],
        training=dict(meta.get("training", {})),
        metrics=dict(meta.get("metrics", {})),
        wavelengths_nm=None if meta.get("wavelengths_nm") is None else tuple(float(w) for w in meta["wavelengths_nm"]),
        ood=meta.get("ood"),
        model_kind=ARCHITECTURES[meta["architecture"]][0],
        inputs=ARCHITECTURES[meta["architecture"]][1],
        temperature=float(meta.get("temperature", 1.0)),
        ensemble_size=len(meta.get("ensemble", {}).get("temperatures", [])),
    )
