"""Commands on single captures: ``info`` (metadata as JSON) and ``preprocess`` (raw triplet to a cube)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print a capture's metadata, camera profile and quality as JSON")
    p.add_argument("raw", type=Path, help="raw frame (TIFF), or a preprocessed cube (.mat preProcessedImage, .npz)")
    p.set_defaults(handler=cmd_info)

    p = subparsers.add_parser(
        "preprocess",
        help="raw triplet to a calibrated, normalised cube (.npz: cube, valid, wavelengths_nm; "
        "or .npy plus a sidecar .json with the wavelengths)",
    )
    p.add_argument("raw", type=Path, help="raw frame (TIFF); references found by name unless given")
    p.add_argument("--dark", type=Path, help="dark reference (TIFF)")
    p.add_argument("--white", type=Path, help="white reference (TIFF)")
    p.add_argument("--profile", help="camera profile id (default: from the TIFF metadata, else thesis-sm5x5-nir)")
    p.add_argument(
        "-o", "--output", type=Path, required=True,
        help="output: NAME.npz (cube float32 (H, W, B), valid bool (H, W), wavelengths_nm) or a .npy cube "
        "with NAME.npy.json beside it",
    )
    p.add_argument("--rgb", type=Path, help="also write the synthetic RGB image (PNG)")
    p.set_defaults(handler=cmd_preprocess)


def profile_summary(profile, serial: str | None = None) -> dict:
    """What ``info`` / ``classify --json`` say about the camera profile a capture is read with."""
    from core.capture.camera_profiles import calibration_note

    return {
        "calibration": calibration_note(profile, serial),
        "id": profile.id,
        "camera_model": profile.camera_model,
        "geometry_source": profile.geometry_label,
        "filter_offset_xy": list(profile.offset_xy),
        "filter_area_wh": list(profile.area_wh),
        "pattern_wh": list(profile.pattern_wh),
        "cube_shape": list(profile.cube_shape),
        "wavelengths_nm": None if profile.wavelengths_nm is None else [round(w, 3) for w in profile.wavelengths_nm],
        "wavelengths_nominal": profile.wavelengths_nominal,
    }


def _cube_info(path: Path) -> dict:
    """``info`` of a preprocessed cube file: shape, bands and their wavelengths (read or assumed), quality."""
    from core.capture.quality import assess_cube_quality
    from core.dataset.nemesis_files import read_preprocessed_cube

    cube = read_preprocessed_cube(path)
    wavelengths = None if cube.wavelengths_nm is None else [round(float(w), 3) for w in cube.wavelengths_nm]
    return {
        "file": str(path),
        "kind": "preprocessed cube",
        "capture_id": path.stem,
        "shape": list(cube.data.shape),
        "valid_pixels": int(cube.valid.sum()),
        "profile_id": cube.profile_id,
        "wavelengths_nm": wavelengths,
        "wavelengths_assumed": cube.wavelengths_assumed,
        "wavelengths_note": f"the file carries none; assumed the {cube.profile_id} camera's output bands"
        if cube.wavelengths_assumed else "from the file",
        "quality": assess_cube_quality(cube).to_dict(),
    }


def cmd_info(args: argparse.Namespace) -> int:
    from core.capture.camera_profiles import resolve_profile
    from core.capture.files import capture_id_for, read_frame
    from core.model.inference import is_cube_file

    if is_cube_file(args.raw):
        print(json.dumps(_cube_info(args.raw), indent=2))
        return 0

    frame, metadata = read_frame(args.raw)
    info = {
        "file": str(args.raw),
        "capture_id": capture_id_for(args.raw),
        "shape": list(frame.shape),
        "dtype": str(frame.dtype),
        "max_value": int(frame.max()),
        "metadata": None if metadata is None else metadata.to_dict(),
        "profile": profile_summary(resolve_profile(metadata), None if metadata is None else metadata.serial),
    }
    try:
        from core.capture.files import find_references, load_capture
        from core.capture.quality import assess_quality

        dark, white = find_references(args.raw)
        info["references"] = {"dark": str(dark), "white": str(white)}
        info["quality"] = assess_quality(load_capture(args.raw, dark, white)).to_dict()
    except ValueError as exc:
        info["references"] = {"error": str(exc)}
    print(json.dumps(info, indent=2))
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    import numpy as np

    from core.capture.files import load_capture
    from core.fileio import atomic_write, atomic_write_text
    from core.spectral.chain import preprocess_capture
    from core.capture.quality import assess_quality

    if (args.dark is None) != (args.white is None):
        raise ValueError("give both --dark and --white, or neither")
    if not args.output.parent.is_dir():
        raise ValueError(f"{args.output}: output folder does not exist")
    capture = load_capture(args.raw, args.dark, args.white)
    cube = preprocess_capture(capture, profile_name=args.profile)
    wavelengths = None if cube.wavelengths_nm is None else [float(w) for w in cube.wavelengths_nm]
    described = {
        "profile": cube.profile_id,
        "geometry_source": cube.geometry_source,
        "wavelengths_nm": wavelengths,
        "wavelengths_nominal": cube.wavelengths_nominal,
        "origin_rc": list(cube.origin_rc),
    }
    sidecar = None
    if args.output.suffix.lower() == ".npz":
        arrays = {"cube": cube.data, "valid": cube.valid, "wavelengths_nm": np.asarray(wavelengths or [], np.float32)}
        arrays["description"] = np.asarray(json.dumps(described))
        atomic_write(args.output, lambda handle: np.savez(handle, **arrays))
    else:
        # Through a file object: np.save(path) would append ".npy" to any other name.
        atomic_write(args.output, lambda handle: np.save(handle, cube.data))
        sidecar = args.output.with_name(args.output.name + ".json")
        atomic_write_text(sidecar, json.dumps(described, indent=1))
    if args.rgb is not None:
        from PIL import Image

        from core.spectral.rgb import synthetic_rgb

        Image.fromarray(synthetic_rgb(cube)).save(args.rgb, format="PNG")
    print(
        json.dumps(
            {
                "cube": str(args.output),
                "sidecar": None if sidecar is None else str(sidecar),
                "shape": list(cube.data.shape),
                **described,
                "valid_pixels": int(cube.valid.sum()),
                "invalid_pixels": int((~cube.valid).sum()),
                "quality": assess_quality(capture).to_dict(),
            }
        )
    )
    return 0
