"""How many CPU cores this process may use."""
from __future__ import annotations

import os

# Overrides the core count used for torch threads and training workers: the test matrix
# (make test-matrix) runs the suite under 1 and 2; also for pinning a deployment by hand.
THREADS_ENV = "NEUROHSI_TORCH_THREADS"


def passive_openmp(environ=os.environ) -> None:
    """Let idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose otherwise.

    Call before torch loads its OpenMP runtime (it reads the variable once). By default
    torch's threads spin for up to ~200 ms after each inference: with anything else on the
    cores (the GUI thread, a second app, other scoring workers) that made inference 3-10x
    slower, starved the event loop and made small scoring requests crawl (0.35 s instead
    of 1 ms); on a quiet machine passive waiting costs about 10 % (52 -> 57 ms). ``environ``:
    the environment to set it in (a child's, for the scoring server).
    """
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """``$NEUROHSI_TORCH_THREADS`` when set; else the cores in this process's affinity mask
    (which, under a CPU quota or pinning, can be fewer than the machine has); the machine's
    count where affinity is unknown."""
    wanted = os.environ.get(THREADS_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, got {wanted!r}")
        return int(wanted)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
