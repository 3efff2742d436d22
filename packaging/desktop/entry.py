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


def run() -> int:
    multiprocessing.freeze_support()  # a frozen multiprocessing child must not run the CLI
    if getattr(sys, "frozen", False) and len(sys.argv) >= 3 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from app.cli.main import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
