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
