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
