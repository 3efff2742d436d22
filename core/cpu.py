"""How many CPU cores this process may use."""
from __future__ import annotations

import os

# Overrides the core count used for torch threads and training workers: the test matrix
# (make test-matrix) runs the suite under 1 and 2; also for pinning a deployment by hand.
THREADS_ENV = "NEUROHSI_TORCH_THREADS"


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
