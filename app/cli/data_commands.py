"""Commands on single captures: ``info`` (metadata as JSON) and ``preprocess`` (raw triplet to a cube)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print a capture's metadata as JSON")
    p.add_argument("raw", type=Path, help="raw frame (TIFF)")
    p.set_defaults(handler=cmd_info)

    p = subparsers.add_parser("preprocess", help="raw triplet to a calibrated, normalised cube (.npy)")
    p.add_argument("raw", type=Path, help="raw frame (TIFF); references found by name unless given")
    p.add_argument("--dark", type=Path, help="dark reference (TIFF)")
    p.add_argument("--white", type=Path, help="white reference (TIFF)")
    p.add_argument("--profile", help="camera profile id (default: from the TIFF metadata, else thesis-sm5x5-nir)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output cube, float32 (H, W, B) .npy")
    p.add_argument("--rgb", type=Path, help="also write the synthetic RGB image (PNG)")
    p.set_defaults(handler=cmd_preprocess)


def cmd_info(args: argparse.Namespace) -> int:
    from core.capture_io import capture_id_for, read_frame

    frame, metadata = read_frame(args.raw)
    info = {
        "file": str(args.raw),
        "capture_id": capture_id_for(args.raw),
        "shape": list(frame.shape),
        "dtype": str(frame.dtype),
        "max_value": int(frame.max()),
        "metadata": None if metadata is None else metadata.to_dict(),
    }
    try:
        from core.capture_io import find_references

        dark, white = find_references(args.raw)
        info["references"] = {"dark": str(dark), "white": str(white)}
    except ValueError as exc:
        info["references"] = {"error": str(exc)}
    print(json.dumps(info, indent=2))
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    import numpy as np

    from core.capture_io import load_capture
    from core.preprocessing import preprocess_capture

    if (args.dark is None) != (args.white is None):
        raise ValueError("give both --dark and --white, or neither")
    capture = load_capture(args.raw, args.dark, args.white)
    cube = preprocess_capture(capture, profile_name=args.profile)
    # Through a file object: np.save(path) would append ".npy" to any other name.
    with open(args.output, "wb") as handle:
        np.save(handle, cube.data)
    if args.rgb is not None:
        from PIL import Image

        from core.rgb import synthetic_rgb

        Image.fromarray(synthetic_rgb(cube)).save(args.rgb, format="PNG")
    print(
        json.dumps(
            {
                "cube": str(args.output),
                "shape": list(cube.data.shape),
                "profile": cube.profile_id,
                "valid_pixels": int(cube.valid.sum()),
                "invalid_pixels": int((~cube.valid).sum()),
            }
        )
    )
    return 0
