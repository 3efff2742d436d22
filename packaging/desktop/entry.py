"""Entry script of the desktop bundle: the one ``neurohsi`` executable (CLI and ``gui``).

Frozen, ``sys.executable`` is this executable, not a Python interpreter; the code
starts helper processes as ``sys.executable -m MODULE ARGS`` (the local training
backend, the training job, ``neurohsi serve``). Such a call runs MODULE as
``__main__``, as ``python -m`` would, so those helpers work the same in the bundle.
"""
from __future__ import annotations

import multiprocessing
import runpy
import sys

from left_out import LEFT_OUT_COMMANDS, LeftOutError, LeftOutFinder

EXIT_ERROR = 2  # as app.cli.main


def run() -> int:
    multiprocessing.freeze_support()  # a frozen multiprocessing child must not run the CLI
    frozen = getattr(sys, "frozen", False)
    if frozen:
        sys.meta_path.append(LeftOutFinder())
    if frozen and len(sys.argv) >= 2 and sys.argv[1] in LEFT_OUT_COMMANDS:
        print(f"neurohsi: error: {LEFT_OUT_COMMANDS[sys.argv[1]]}", file=sys.stderr)
        return EXIT_ERROR
    try:
        if frozen and len(sys.argv) >= 3 and sys.argv[1] == "-m":
            module = sys.argv[2]
            sys.argv = [sys.argv[0], *sys.argv[3:]]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            return 0
        from app.cli.main import main

        return main()
    except ImportError as exc:  # runpy wraps the finder's error in its own ImportError
        left_out = exc if isinstance(exc, LeftOutError) else exc.__cause__
        if not isinstance(left_out, LeftOutError):
            raise
        print(f"neurohsi: error: {left_out}", file=sys.stderr)  # one line, as every CLI error (app.cli.main)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(run())
