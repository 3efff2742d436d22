"""Where inference runs: a CUDA device when one is usable, else the CPU; never required.

``NEUROHSI_DEVICE`` (``cpu``, ``cuda`` or ``cuda:N``) overrides the choice, e.g. to keep
a shared GPU free or to compare the two. The network's weights are copied to the
device once per network (:func:`on_device`), not per capture.
"""
from __future__ import annotations

import copy
import os
import re
import threading
import weakref

import torch

DEVICE_ENV = "NEUROHSI_DEVICE"
_DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?")

_copies: "weakref.WeakKeyDictionary[torch.nn.Module, dict[str, torch.nn.Module]]" = weakref.WeakKeyDictionary()
_copies_lock = threading.Lock()  # live mode classifies on two threads


def inference_device(requested: str | None = None, *, environ=None) -> str:
    """The torch device name to run inference on: ``requested``, else ``$NEUROHSI_DEVICE``, else
    ``"cuda"`` when torch sees a CUDA device, else ``"cpu"``.

    Raises ``ValueError`` naming the setting for a name that is not ``cpu`` / ``cuda`` /
    ``cuda:N``, or for CUDA asked for explicitly where there is none.
    """
    environ = os.environ if environ is None else environ
    source, name = ("device", requested) if requested is not None else (DEVICE_ENV, environ.get(DEVICE_ENV) or None)
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    name = name.strip().lower()
    if not _DEVICE_PATTERN.fullmatch(name):
        raise ValueError(f"{source} must be 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"{source} asks for {name!r} but torch sees no CUDA device (set it to 'cpu')")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"{source} asks for {name!r} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return name


def on_device(net: torch.nn.Module, device: str) -> torch.nn.Module:
    """``net`` itself on the CPU; elsewhere a copy on ``device``, made once and kept while ``net`` lives."""
    if device == "cpu":
        return net
    with _copies_lock:
        per_net = _copies.setdefault(net, {})
        if device not in per_net:
            # TF32 convolutions keep 10 mantissa bits: maps could move past the parity
            # tolerance (probabilities within 0.01; bfloat16 did, docs/benchmarks/inference.md).
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
            per_net[device] = copy.deepcopy(net).to(device).eval()
        return per_net[device]
