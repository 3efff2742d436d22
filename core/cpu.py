"""How many CPU cores this process may use: its affinity mask, cut by a cgroup CPU quota.

A Kubernetes CPU limit (AKS, Azure ML Kubernetes deployments) is a CFS quota, not an
affinity mask: a pod limited to 2 CPUs on a 16-core node still sees 16 cores in
``sched_getaffinity``, runs 16 torch threads and is throttled for most of each period. The
quota is read from the cgroup the process is in:

- cgroup v2: ``cpu.max`` = ``"<quota_us> <period_us>"`` or ``"max <period_us>"`` (no limit);
- cgroup v1: ``cpu.cfs_quota_us`` (``-1`` = no limit) and ``cpu.cfs_period_us`` in the ``cpu``
  controller's hierarchy.

The limit of a parent cgroup applies to its children, so every level from the process's
cgroup up to the root is read and the smallest quota wins. Cores = ``floor(quota / period)``,
at least 1 (rounding up would let the threads overrun the quota again).
"""
from __future__ import annotations

import math
import os
import threading
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")

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


# glibc's malloc settings for a process that makes one full map after another
# (docs/benchmarks/live.md): blocks up to 32 MiB come from the heap, not from a fresh
# mmap each time, and up to 256 MiB of freed heap is kept rather than given back.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD_BYTES, "MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD_BYTES}


def reuse_freed_memory(environ=None) -> bool:
    """Keep freed buffers for the next map instead of returning them to the kernel (glibc only).

    A full map allocates ~20 buffers of 0.4-4.4 MB (frame, cube, probabilities). glibc
    serves blocks over its mmap threshold (128 KiB, raised only as such blocks are freed)
    with a fresh ``mmap`` and unmaps them on free, so each map first-touched its memory again:
    ~1,700 page faults and 10 ms of kernel time a map at 20 maps/s, and the spikes that made
    ``watch`` skip captures. With the thresholds raised (:data:`MMAP_THRESHOLD_BYTES`,
    :data:`TRIM_THRESHOLD_BYTES`) the same buffers are reused: memory stays flat, a little
    higher. A setting the user made (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``)
    wins. ``environ``: set the variables there instead, for a child process (glibc reads them
    as it starts). True when applied to this process (glibc found), else False.
    """
    if environ is not None:
        for name, value in _MALLOC_ENV.items():
            environ.setdefault(name, str(value))
        return False
    if any(name in os.environ for name in _MALLOC_ENV):
        return False
    try:  # "glibc 2.35" on glibc; no such name elsewhere (musl, macOS, Windows)
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        libc_version = ""
    if not libc_version.startswith("glibc"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def usable_cores(*, cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> int:
    """``$NEUROHSI_TORCH_THREADS`` when set; else the cores this process may keep busy: its
    affinity mask (the machine's count where affinity is unknown), at most the cgroup CPU quota
    (:func:`cgroup_cpu_limit`) rounded down, at least 1."""
    wanted = os.environ.get(THREADS_ENV, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, got {wanted!r}")
        return int(wanted)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root=cgroup_root, self_cgroup=self_cgroup)
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def cgroup_cpu_limit(*, cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> float | None:
    """CPUs allowed by the cgroup quota (``quota / period``, e.g. 2.0), or None when there is none
    or it cannot be read (not Linux, no cgroup filesystem, unreadable or malformed files)."""
    try:
        lines = Path(self_cgroup).read_text().splitlines()
    except OSError:
        return None
    root = Path(cgroup_root)
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # "0::/path": the cgroup v2 unified hierarchy
            limits += _levels(root, path, _v2_limit)
        elif "cpu" in controllers.split(","):  # "4:cpu,cpuacct:/path": the v1 cpu controller
            for mount in (root / controllers, root / "cpu,cpuacct", root / "cpu"):
                if mount.is_dir():
                    limits += _levels(mount, path, _v1_limit)
                    break
    found = [value for value in limits if value is not None]
    return min(found) if found else None


def _levels(mount: Path, path: str, read_limit) -> list[float | None]:
    """``read_limit`` of the cgroup at ``mount/path`` and of each parent up to ``mount``."""
    # Inside a container with a cgroup namespace the path is "/" and the mount is the container's own.
    relative = Path(path.strip().lstrip("/"))
    levels = [mount / relative, *[mount / parent for parent in relative.parents]]
    return [read_limit(level) for level in dict.fromkeys(levels) if level.is_dir()]


def _v2_limit(folder: Path) -> float | None:
    try:
        fields = (folder / "cpu.max").read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = (folder / "cpu.cfs_quota_us").read_text().strip()
        period = (folder / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None  # -1 (v1) = no limit


# -- a few numpy steps at once ----------------------------------------------------------
# numpy releases the GIL in its loops, matmul and einsum, so independent steps of one
# capture (two halves of the cube, the RGB beside the quality checks) run on two cores
# from plain threads. The pool is made once; its threads sleep when idle.
_pool = None
_pool_lock = threading.Lock()


def run_parallel(calls, threads: int | None = None) -> list:
    """``[call() for call in calls]``, run at once: the first on the caller's thread, the others on
    a pool of up to 3 threads. Results in the calls' order; the first exception (in call order)
    is raised here, after every call has ended. Callers give as many calls as they want cores busy.

    ``threads`` (default: every usable core) 1, or one call, runs them one after another on the
    caller's thread: what each live classifier asks for, the other core being the other
    classifier's. Not for calls that call it again.
    """
    global _pool
    calls = list(calls)
    threads = usable_cores() if threads is None else threads
    if threads <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    from concurrent.futures import ThreadPoolExecutor

    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="neurohsi-parallel")
        pool = _pool
    futures = [pool.submit(call) for call in calls[1:]]
    outcomes: list = []
    for call in calls[:1]:
        try:
            outcomes.append((call(), None))
        except Exception as exc:  # noqa: BLE001 - raised below, after the others ended
            outcomes.append((None, exc))
    for future in futures:
        try:
            outcomes.append((future.result(), None))
        except Exception as exc:  # noqa: BLE001
            outcomes.append((None, exc))
    for _value, error in outcomes:
        if error is not None:
            raise error
    return [value for value, _error in outcomes]
