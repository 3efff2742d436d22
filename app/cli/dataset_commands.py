"""Dataset commands: ``demo-data``, ``demo-capture``, ``import-nemesis``.

Progress goes to stderr; the result (a JSON summary, or the raw path for
``demo-capture``) goes to stdout so scripts can read it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo-data",
        help="write a dataset of synthetic labelled captures",
        description="Write DATASET/<capture_id>/{raw,dark,white}.tif, labels.png, meta.json for N synthetic "
        "captures, one per thesis patient in turn, with that patient's Table 3.1 label counts.",
    )
    p.add_argument("out", type=Path, help="dataset folder to write (created; existing captures of the same id replaced)")
    p.add_argument("--captures", type=int, default=13, metavar="N", help="number of captures (default 13)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--small", action="store_true", help="tiny 40x60 cubes (synthetic-small profile) for quick tests")
    p.set_defaults(handler=cmd_demo_data)

    p = subparsers.add_parser(
        "demo-capture",
        help="write one full-resolution synthetic NEMESIS-named triplet and its labels",
        description="Write ID0001C01.tif, ID0001CD01.tif, ID0001CW01.tif and ID0001C01_labels.png into OUT_DIR "
        "and print the raw file's path.",
    )
    p.add_argument("out_dir", type=Path, help="folder to write into (created)")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    p.set_defaults(handler=cmd_demo_capture)

    p = subparsers.add_parser(
        "import-nemesis",
        help="import a NEMESIS archive folder into a dataset folder",
        description="Read IDxxxxCyy.tif triplets, SNAPgt<ID>_cropped_Pre-processed.mat ground truth and "
        "<ID>_dataset.mat spectra from SRC and write DATASET/<capture_id>/...",
    )
    p.add_argument("src", type=Path, help="NEMESIS folder")
    p.add_argument("dataset", type=Path, help="dataset folder to write")
    p.add_argument(
        "--crop-offset", action="append", default=[], metavar="ID=ROW,COL",
        help="where a cropped ground-truth map's top-left corner sits in the cube of capture (or patient) ID; repeatable",
    )
    p.add_argument(
        "--crop-offsets", type=Path, metavar="FILE.json",
        help='crop offsets for many captures: {"ID0018C01": [row, col], ...}',
    )
    p.set_defaults(handler=cmd_import_nemesis)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _check_output_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile, thesis_patients

    if args.captures < 1:
        raise ValueError(f"--captures must be >= 1, got {args.captures}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    _check_output_folder(args.out)
    profile = small_profile() if args.small else None
    patients = thesis_patients()
    written, used_ids = [], set()
    for index in range(args.captures):
        patient = patients[index % len(patients)]
        _progress(f"[{index + 1}/{args.captures}] generating {patient}")
        capture = generate_capture(seed=args.seed + index, patient=patient, profile=profile)
        capture_id = capture.capture_id
        while capture_id in used_ids:  # more captures than patients: the patient's next capture number
            capture_id = f"{capture_id[:-2]}{int(capture_id[-2:]) + 1:02d}"
        used_ids.add(capture_id)
        item = write_capture_folder(
            args.out,
            capture_id,
            capture.raw,
            capture.dark,
            capture.white,
            capture.labels,
            metadata=capture.metadata,
            meta={"patient": patient, "source": "synthetic", "seed": capture.seed, "source_patient": capture.source_patient},
        )
        written.append({"capture_id": capture_id, "patient": patient, "label_counts": item.meta["label_counts"]})
    print(json.dumps({"dataset": str(args.out), "profile": item.meta["profile"], "captures": written}))
    return 0


def cmd_demo_capture(args: argparse.Namespace) -> int:
    from core.labels.maps import write_label_png
    from core.capture.synthetic.captures import generate_capture

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    _check_output_folder(args.out_dir)
    _progress(f"generating a synthetic capture (seed {args.seed})")
    capture = generate_capture(seed=args.seed, patient="ID1")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    raw_path = capture.write_nemesis_files(args.out_dir, "ID0001C01")
    write_label_png(args.out_dir / "ID0001C01_labels.png", capture.labels)
    _progress(f"wrote {raw_path} (+ dark, white references and ID0001C01_labels.png)")
    print(raw_path)
    return 0


def cmd_import_nemesis(args: argparse.Namespace) -> int:
    from core.dataset.nemesis_import import import_nemesis
    from core.labels.nemesis import parse_crop_offset, read_crop_offsets

    _check_output_folder(args.dataset)
    offsets = read_crop_offsets(args.crop_offsets) if args.crop_offsets is not None else {}
    for item in args.crop_offset:
        capture_id, sep, value = item.partition("=")
        if not sep or not capture_id.strip():
            raise ValueError(f"--crop-offset must be ID=ROW,COL, got {item!r}")
        offsets[capture_id.strip()] = parse_crop_offset(value, source=f"--crop-offset {capture_id.strip()}")
    summary = import_nemesis(args.src, args.dataset, progress=_progress, crop_offsets=offsets)
    print(json.dumps(summary))
    return 0
