"""Per-stage CPU and wall time for the benchmarks: one warm-up, then the median of ``repeats`` runs."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def print_stage_table(rows: Sequence[tuple[str, Callable[[], object]]], repeats: int, *, title: str = "stage",
                      width: int = 45) -> None:
    """Print ``label  CPU ms  wall ms`` (medians, milliseconds) for each ``(label, fn)`` of ``rows``."""
    print(f"{title:<{width}} {'CPU ms':>7} {'wall ms':>8}")
    for label, fn in rows:
        fn()  # warm-up: first-call costs (imports, caches) are not a stage's cost
        cpu, wall = [], []
        for _ in range(repeats):
            c, w = time.process_time(), time.perf_counter()
            fn()
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - w)
        print(f"{label:<{width}} {1000 * float(np.median(cpu)):>7.1f} {1000 * float(np.median(wall)):>8.1f}")


def sequential_s(timings: dict[str, float]) -> float:
    """Seconds of the named stages of a result's ``timings_s`` one after another: "rgb" and "quality"
    run at once on every core (core.model.inference.prepare), so the longer of the two counts."""
    overlapping = [timings[k] for k in ("rgb", "quality") if k in timings]
    rest = sum(v for k, v in timings.items() if k not in ("total", "rgb", "quality"))
    return rest + (max(overlapping) if overlapping else 0.0)
