"""core.cpu: the thread count follows a cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us), on fake cgroup trees."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.cpu import cgroup_cpu_limit, usable_cores


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


@pytest.fixture(autouse=True)
def _no_thread_override(monkeypatch):
    """These tests are about the quota: the matrix's NEUROHSI_TORCH_THREADS override must not mask it."""
    monkeypatch.delenv("NEUROHSI_TORCH_THREADS", raising=False)


def _v2(tmp_path: Path, cpu_max: str | None, *, path: str = "/kubepods/pod1/c1", parent_max: str | None = None):
    root = tmp_path / "cgroup"
    leaf = root / path.lstrip("/")
    leaf.mkdir(parents=True)
    if cpu_max is not None:
        (leaf / "cpu.max").write_text(cpu_max + "\n")
    if parent_max is not None:
        (leaf.parent / "cpu.max").write_text(parent_max + "\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"0::{path}\n")
    return {"cgroup_root": root, "self_cgroup": self_cgroup}


def _v1(tmp_path: Path, quota: str, period: str = "100000", *, controllers: str = "cpu,cpuacct"):
    root = tmp_path / "cgroup"
    leaf = root / controllers / "docker" / "abc"
    leaf.mkdir(parents=True)
    (leaf / "cpu.cfs_quota_us").write_text(quota + "\n")
    (leaf / "cpu.cfs_period_us").write_text(period + "\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text(f"12:memory:/docker/abc\n4:{controllers}:/docker/abc\n1:name=systemd:/docker/abc\n")
    return {"cgroup_root": root, "self_cgroup": self_cgroup}


@pytest.mark.parametrize(("cpu_max", "limit"), [("100000 100000", 1.0), ("150000 100000", 1.5), ("50000 100000", 0.5)])
def test_v2_quota_is_read(tmp_path, cpu_max, limit):
    assert cgroup_cpu_limit(**_v2(tmp_path, cpu_max)) == pytest.approx(limit)
    # floor, at least one: never more threads than the quota feeds (the affinity mask may be smaller still)
    assert usable_cores(**_v2(tmp_path / "again", cpu_max)) == min(_affinity(), max(1, int(limit)))


def test_v2_no_limit_keeps_the_affinity(tmp_path):
    fake = _v2(tmp_path, "max 100000")
    assert cgroup_cpu_limit(**fake) is None
    assert usable_cores(**fake) == _affinity()


def test_v2_a_parents_limit_applies(tmp_path):
    fake = _v2(tmp_path, "max 100000", parent_max="100000 100000")
    assert cgroup_cpu_limit(**fake) == pytest.approx(1.0)
    assert usable_cores(**fake) == 1


def test_v2_a_quota_of_many_cpus_does_not_raise_the_count(tmp_path):
    fake = _v2(tmp_path, f"{(_affinity() + 8) * 100000} 100000")
    assert usable_cores(**fake) == _affinity()


@pytest.mark.parametrize("controllers", ["cpu,cpuacct", "cpu"])
def test_v1_quota_is_read(tmp_path, controllers):
    fake = _v1(tmp_path, "100000", controllers=controllers)
    assert cgroup_cpu_limit(**fake) == pytest.approx(1.0)
    assert usable_cores(**fake) == 1


def test_v1_minus_one_is_no_limit(tmp_path):
    assert cgroup_cpu_limit(**_v1(tmp_path, "-1")) is None


@pytest.mark.parametrize("content", ["", "garbage", "100000", "abc 100000", "100000 0"])
def test_malformed_or_missing_files_mean_no_limit(tmp_path, content):
    fake = _v2(tmp_path, content)
    assert cgroup_cpu_limit(**fake) is None
    assert usable_cores(cgroup_root=tmp_path / "none", self_cgroup=tmp_path / "missing") == _affinity()


def test_torch_threads_follow_the_quota_in_inference(tmp_path, monkeypatch):
    import torch

    from core import cpu
    from core.model import inference

    fake = _v2(tmp_path, "100000 100000")
    monkeypatch.setattr(inference, "usable_cores", lambda: cpu.usable_cores(**fake))
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(max(2, previous))
        inference._use_all_cores()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
