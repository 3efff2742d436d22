"""Self-check inside the bundle: ``neurohsi -m bundle_check`` prints what the smoke test verifies, as JSON.

The build identity, whether it runs frozen, the version of every component Help > About lists
(their metadata must be in the bundle), the Qt platform plugins shipped, a TIFF round trip
through each compression the spec ships a codec for, and the CPU inference runtime with one
small map made in it and in torch.
"""
from __future__ import annotations

import io
import json
import os
import sys

TIFF_COMPRESSIONS = ("lzw", "packbits", "zlib", "zstd", "lzma", "jpeg")


def tiff_round_trips() -> dict[str, str]:
    """compression -> "ok" or the error: write a small uint16 frame (uint8 for JPEG) and read it back."""
    import numpy as np
    import tifffile

    results = {}
    for compression in TIFF_COMPRESSIONS:
        frame = (np.arange(64 * 80).reshape(64, 80) % 251).astype(np.uint8 if compression == "jpeg" else np.uint16)
        try:
            buffer = io.BytesIO()
            tifffile.imwrite(buffer, frame, compression=compression)
            back = tifffile.imread(io.BytesIO(buffer.getvalue()))
            lossy = compression == "jpeg"
            ok = back.shape == frame.shape and (lossy or bool((back == frame).all()))
            results[compression] = "ok" if ok else "decoded frame differs"
        except Exception as exc:  # any failure is the finding
            results[compression] = f"{type(exc).__name__}: {exc}"
    return results


def inference_runtime() -> dict:
    """The CPU runtime the bundle classifies with, and the largest probability difference of one
    small random map between it and torch (the parity rule allows 0.01)."""
    import numpy as np
    import torch

    from core.model.inference import predict_dense
    from core.model.network import Conv2DNet
    from core.model.ort_runtime import RUNTIME_ENV, cpu_runtime

    runtime = cpu_runtime()
    torch.manual_seed(0)
    net = Conv2DNet(25, 5, 7).eval()
    cube = np.random.default_rng(0).random((16, 20, 25), dtype=np.float32)
    before = os.environ.get(RUNTIME_ENV)
    try:
        os.environ[RUNTIME_ENV] = "torch"
        reference = predict_dense(net, cube, threads=1)[0]
        os.environ[RUNTIME_ENV] = runtime
        probabilities = predict_dense(net, cube, threads=1)[0]
    finally:
        if before is None:
            os.environ.pop(RUNTIME_ENV, None)
        else:
            os.environ[RUNTIME_ENV] = before
    return {"runtime": runtime, "max_probability_difference": float(np.abs(probabilities - reference).max())}


def report() -> dict:
    from PySide6.QtCore import QLibraryInfo

    from app.about_dialog import BUNDLED_COMPONENTS, component_version
    from app.build_info import build_info

    plugins = os.path.join(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath), "platforms")
    try:
        import imagecodecs

        codecs = imagecodecs.__version__
    except ImportError:
        codecs = None
    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "build": build_info(),
        "components": {name: component_version(name) for name, _licence in BUNDLED_COMPONENTS},
        "qt_platform_plugins": sorted(os.listdir(plugins)) if os.path.isdir(plugins) else [],
        "imagecodecs": codecs,
        "tiff_round_trips": tiff_round_trips(),
        "inference": inference_runtime(),
    }


if __name__ == "__main__":
    print(json.dumps(report(), indent=2))
