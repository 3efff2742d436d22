"""Self-check inside the bundle: ``neurohsi -m bundle_check`` prints what the smoke test verifies, as JSON.

The build identity, whether it runs frozen, the version of every component Help > About lists
(their metadata must be in the bundle), the Qt platform plugins shipped, and a TIFF round trip
through each compression the spec ships a codec for.
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
    }


if __name__ == "__main__":
    print(json.dumps(report(), indent=2))
