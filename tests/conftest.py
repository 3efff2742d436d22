"""Shared test settings: offscreen Qt, an in-memory keyring, small seeded captures."""
from __future__ import annotations

import ipaddress
import os
import socket

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from core.cpu import passive_openmp

passive_openmp()  # as the neurohsi entry point does, before anything loads torch

import numpy as np
import pytest
import torch

from core.cpu import THREADS_ENV, usable_cores

from core.capture.files import write_frame
from core.capture.metadata import CaptureMetadata


def random_triplet(rng: np.random.Generator, shape: tuple[int, int], *, bits: int = 10):
    """Random uint16 raw/dark/white frames with ``dark < raw < white`` almost everywhere."""
    top = 2**bits - 1
    dark = rng.integers(0, 60, size=shape, dtype=np.uint16)
    white = rng.integers(top // 2, top, size=shape, dtype=np.uint16)
    raw = (dark + (white - dark) * rng.uniform(0.05, 0.95, size=shape)).astype(np.uint16)
    return raw, dark, white


# make test-matrix runs the suite under NEUROHSI_TORCH_THREADS=1 and 2: core reads it
# (core.cpu.usable_cores) for inference and training; torch starts with it too.
if os.environ.get(THREADS_ENV):
    torch.set_num_threads(usable_cores())


# -- no traffic beyond this machine -------------------------------------------------------
# Every name a test process looks up must be loopback. Any other name fails to resolve here,
# before a packet leaves (not even a DNS query), and fails the test that asked, unless it is
# marked ``unresolvable_host`` (it checks what the product says when a name does not resolve).
_real_getaddrinfo = socket.getaddrinfo
_lookups_elsewhere: list[str] = []


def _is_loopback(host) -> bool:
    if host in (None, "", b"", "localhost", b"localhost"):
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        return ipaddress.ip_address(name.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return name.lower().endswith(".localhost")


def _loopback_only_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        _lookups_elsewhere.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: tests reach only this machine (tests/conftest.py)")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only_getaddrinfo


@pytest.fixture(autouse=True)
def _only_loopback_traffic(request):
    _lookups_elsewhere.clear()
    yield
    if _lookups_elsewhere and request.node.get_closest_marker("unresolvable_host") is None:
        hosts = sorted(set(_lookups_elsewhere))
        pytest.fail(f"the test tried to reach {hosts} (not this machine): use 127.0.0.1, or mark it "
                    f"unresolvable_host if it checks a name that does not resolve", pytrace=False)


def pytest_report_header(config):
    return f"torch threads: {torch.get_num_threads()} ({THREADS_ENV}={os.environ.get(THREADS_ENV, '')!r})"


@pytest.fixture
def capture_files(tmp_path):
    """Factory: write a NEMESIS-named triplet ``IDxxxxC01.tif`` (+CD/CW) and return the raw path."""

    def make(
        shape=(1088, 2048),
        *,
        seed: int = 0,
        metadata: CaptureMetadata | None = None,
        name: str = "ID0001C01",
        folder=None,
    ):
        rng = np.random.default_rng(seed)
        raw, dark, white = random_triplet(rng, shape)
        folder = tmp_path if folder is None else folder
        base, n = name.split("C")[0], name.split("C")[1]
        raw_path = write_frame(folder / f"{name}.tif", raw, metadata)
        write_frame(folder / f"{base}CD{n}.tif", dark, metadata)
        write_frame(folder / f"{base}CW{n}.tif", white, metadata)
        return raw_path

    return make


@pytest.fixture(autouse=True)
def memory_keyring():
    """Every test gets an empty in-memory keyring (no OS keyring, no prompts)."""
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1

        def __init__(self):
            super().__init__()
            self.store: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            from keyring.errors import PasswordDeleteError

            if self.store.pop((service, username), None) is None:
                raise PasswordDeleteError(username)

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch):
    """Every test gets its own NEUROHSI_HOME: the installed-model store (models/history.json) and local
    jobs never come from, or go to, the user's folder (a test may set its own)."""
    monkeypatch.setenv("NEUROHSI_HOME", str(tmp_path_factory.mktemp("home")))
