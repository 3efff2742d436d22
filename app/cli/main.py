"""``neurohsi`` entry point: builds the parser from the command modules and
turns expected errors into one line on stderr and a non-zero exit, never a traceback.

Each command module exposes ``register(subparsers)``; its handlers import heavy
modules (torch, Qt, azure) lazily so ``neurohsi --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.cpu import passive_openmp, reuse_freed_memory

passive_openmp()  # before any command loads torch
reuse_freed_memory()  # before the first large buffer: maps reuse their memory (watch, serve, classify)

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = (
    "app.cli.data_commands",  # info, preprocess
    "app.cli.dataset_commands",  # demo-data, demo-capture, import-nemesis
    "app.cli.classify_commands",  # classify
    "app.cli.dicom_commands",  # export-dicom, pacs
    "app.cli.training_commands",  # train, evaluate
    "app.cli.serve_commands",  # serve
    "app.cli.model_commands",  # model list | current | install | revert
    "app.cli.cloud_commands",  # cloud ...
    "app.cli.gui_commands",  # gui
    "app.cli.watch_commands",  # watch
    "app.cli.audit_commands",  # audit
)

EXIT_ERROR = 2


class _VersionAction(argparse.Action):
    """``--version``: version, and for the desktop bundle its build date and commit (read only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from app.build_info import build_info

        info = build_info()
        if info["build_date"] or info["commit"]:
            detail = f"bundle built {info['build_date'] or 'unknown'}, commit {(info['commit'] or 'unknown')[:12]}"
        else:
            detail = "source install"
        print(f"neurohsi {info['version']} ({detail})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurohsi",
        description="NeuroHSI: hyperspectral brain-tissue maps for research use (not for diagnostic use).",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version (and bundle build) and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from core.errors import NeuroHSIError, one_line

    try:
        result = args.handler(args)
    except KeyboardInterrupt:
        print("neurohsi: interrupted", file=sys.stderr)
        return 130
    except (NeuroHSIError, OSError, ValueError) as exc:
        print(f"neurohsi: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
