"""How many CPU cores this process may use."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores in this process's affinity mask (which, under a CPU quota or pinning, can be
    fewer than the machine has); the machine's count where affinity is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
