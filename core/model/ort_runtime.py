"""Which runtime runs the dense network on the CPU: ONNX Runtime when installed, else torch.

ONNX Runtime runs this network 2-3x faster than torch's oneDNN on one or two cores
(docs/benchmarks/inference.md) and gives the same maps: probabilities within 1e-6 of
torch's float32 in the tests, labels equal except at near-ties. Torch stays the fallback,
the runtime on a CUDA device, and the one that trains.

``NEUROHSI_RUNTIME`` overrides the choice: ``onnxruntime``, ``torch``, or ``auto`` (the
default: ONNX Runtime when it can be imported). One ONNX Runtime session is built per
network and thread count (:func:`session_for`, ~20 ms), kept while the network lives.
Its threads do not spin between maps, so they take nothing from the GUI or the other
live classifier.
"""
from __future__ import annotations

import os
import threading
import weakref

import numpy as np

RUNTIME_ENV = "NEUROHSI_RUNTIME"
RUNTIMES = ("auto", "onnxruntime", "torch")

_sessions: "weakref.WeakKeyDictionary[object, dict[tuple, object]]" = weakref.WeakKeyDictionary()
_sessions_lock = threading.Lock()  # live mode classifies on two threads


def onnxruntime_available() -> bool:
    """True when ``onnxruntime`` imports."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_runtime(environ=None) -> str:
    """``"onnxruntime"`` or ``"torch"``: the runtime for dense inference on the CPU.

    Raises ``ValueError`` naming ``NEUROHSI_RUNTIME`` for an unknown name, or for
    ``onnxruntime`` asked for explicitly where it is not installed.
    """
    environ = os.environ if environ is None else environ
    name = (environ.get(RUNTIME_ENV) or "auto").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV} must be one of {', '.join(RUNTIMES)}, got {name!r}")
    if name == "torch":
        return "torch"
    available = onnxruntime_available()
    if name == "onnxruntime" and not available:
        raise ValueError(f"{RUNTIME_ENV} asks for onnxruntime but it is not installed (set it to 'torch')")
    return "onnxruntime" if available else "torch"


def session_for(key, padding: str, make_dense, threads: int):
    """The ONNX Runtime session of ``key``'s dense network (``make_dense()``, called only to build
    one) with ``padding`` on ``threads`` intra-op threads. Built once per (``key``, padding,
    threads) while ``key`` (the caller's network object) lives, and again when ``key``'s weights
    were changed in place (a training step, a load: their tensors' versions move)."""
    import onnxruntime as ort

    from core.model.onnx_graph import dense_onnx_model

    cache_key = (padding, threads)
    stamp = tuple(t._version for t in key.parameters()) if hasattr(key, "parameters") else ()
    with _sessions_lock:
        per_net = _sessions.setdefault(key, {})
        stamped, session = per_net.get(cache_key, (None, None))
        if session is None or stamped != stamp:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3  # errors only: no warnings on the user's console
            model = dense_onnx_model(make_dense(), padding)
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
            per_net[cache_key] = (stamp, session)
        return session


def dense_logits(key, padding: str, make_dense, cube: np.ndarray, threads: int) -> np.ndarray:
    """Logits float32 ``(C, H, W)`` of one cube ``(H, W, B)``, padded with ``padding`` in the graph,
    through ONNX Runtime (:func:`session_for` gives the session)."""
    from core.model.onnx_graph import INPUT

    session = session_for(key, padding, make_dense, threads)
    return session.run(None, {INPUT: np.ascontiguousarray(cube, dtype=np.float32)[None]})[0][0]


def describe_runtime() -> str:
    """Where and in what the network runs, for diagnostics: ``"CPU, ONNX Runtime 1.32.0"``, or the
    setting's problem in one line."""
    import torch

    from core.model.device import inference_device

    try:
        device = inference_device()
        if device != "cpu":
            return f"{device}, torch {torch.__version__}"
        if cpu_runtime() == "onnxruntime":
            import onnxruntime

            return f"CPU, ONNX Runtime {onnxruntime.__version__}"
        return f"CPU, torch {torch.__version__}"
    except ValueError as exc:
        return f"not usable: {exc}"
