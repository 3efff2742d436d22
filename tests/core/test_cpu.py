"""The core count: the affinity mask, or NEUROHSI_TORCH_THREADS (the test matrix) when set."""
from __future__ import annotations

import os

import pytest

from core.cpu import THREADS_ENV, usable_cores


def test_threads_variable_overrides_the_affinity_mask(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "3")
    assert usable_cores() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            usable_cores()


def test_passive_openmp_sets_the_policy_once_and_keeps_a_users_choice():
    from core.cpu import passive_openmp

    env: dict[str, str] = {}
    passive_openmp(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    passive_openmp(env)
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_the_entry_point_sets_the_policy_before_torch_loads():
    import subprocess
    import sys
    from pathlib import Path

    code = "import os, sys; import app.cli.main; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["PASSIVE", "False"]


def test_run_parallel_keeps_order_runs_at_once_and_raises_the_first_error():
    import threading

    from core.cpu import run_parallel

    caller = threading.get_ident()
    seen: dict[int, int] = {}

    def call(i):
        seen[i] = threading.get_ident()
        return i * i

    assert run_parallel([lambda i=i: call(i) for i in range(3)], threads=2) == [0, 1, 4]
    assert seen[0] == caller and seen[1] != caller and seen[2] != caller  # the others on the pool
    seen.clear()
    assert run_parallel([lambda i=i: call(i) for i in range(3)], threads=1) == [0, 1, 4]
    assert set(seen.values()) == {caller}  # one thread: one after another, here (a live classifier)

    ended = []

    def fails(message):
        raise ValueError(message)

    def slow():
        threading.Event().wait(0.05)
        ended.append(True)

    with pytest.raises(ValueError, match="first"):
        run_parallel([lambda: fails("first"), slow, lambda: fails("second")], threads=2)
    assert ended == [True]  # every call ended before the error came back


_FAULTS = """
import resource, sys
import numpy as np
from core.cpu import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "on" else None
np.ones(1 << 20)  # numpy's own first-use costs
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for k in range(40):  # ever larger buffers, each filled then freed: a fresh mmap each time by default
    a = np.ones((2 << 20) + k * (64 << 10), np.uint8)
    del a
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env) -> tuple[str, int]:
    import subprocess
    import sys
    from pathlib import Path

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    code = env.pop("_CODE", _FAULTS)
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True,
                         env={**clean, **env, "QT_QPA_PLATFORM": "offscreen"},
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    return out[0], int(out[1])


def test_freed_buffers_are_reused_not_faulted_in_again_on_glibc():
    """The allocator keeps freed map buffers (glibc): the next map's buffers cost no page faults."""

    applied, with_reuse = _faults("on")
    _, without = _faults("off")
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        assert applied == "False"  # nothing to tune: said, not pretended
        return
    assert applied == "True"
    assert without > 10 * max(with_reuse, 1), (without, with_reuse)


def test_a_users_malloc_setting_wins_and_a_child_gets_the_variables():
    from core.cpu import MMAP_THRESHOLD_BYTES, reuse_freed_memory

    applied, _ = _faults("on", MALLOC_MMAP_THRESHOLD_="131072")
    assert applied == "False"
    env: dict[str, str] = {"MALLOC_TRIM_THRESHOLD_": "0"}
    assert reuse_freed_memory(env) is False  # set for the child, not applied here
    assert env == {"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES)}


@pytest.mark.parametrize("entry", ["app.cli.main", "app.application"])
def test_the_entry_points_tune_the_allocator_before_the_first_map(entry):
    """``neurohsi`` (watch, classify, serve) and the GUI: importing the entry point is enough."""

    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        assert _faults("on")[0] == "False"
        return
    code = _FAULTS.replace("from core.cpu import reuse_freed_memory", f"import {entry}")
    _, without = _faults("off")
    _, with_entry = _faults("off", _CODE=code)
    assert without > 10 * max(with_entry, 1), (entry, without, with_entry)


def test_the_scoring_servers_workers_get_the_allocator_settings():
    from core.cpu import MMAP_THRESHOLD_BYTES
    from remote.scoring_server import build_parser, configure_environment

    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    configure_environment(build_parser().parse_args([]), environ)
    assert environ["MALLOC_MMAP_THRESHOLD_"] == str(MMAP_THRESHOLD_BYTES)
