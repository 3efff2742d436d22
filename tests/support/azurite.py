"""Azurite (the real Azure Blob Storage emulator, npm ``azurite``) on 127.0.0.1 for tests.

``make test-deps`` installs it into ``.tools/azurite``. A server binds 127.0.0.1 on a
free port, runs in its own process group (so stopping it leaves no node child behind)
and answers with the well-known ``devstoreaccount1`` development account.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO_ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"

# Azurite's published development account (not a secret: it is in Microsoft's docs).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteMissing(RuntimeError):
    """The azurite binary is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connection_string(port: int, *, key: str = DEV_KEY) -> str:
    """Connection string for the dev account on ``127.0.0.1:port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


class AzuriteServer:
    """One Azurite blob service that a test can stop and start again on the same port.

    ``in_memory=False`` keeps blobs (and staged, uncommitted blocks) in ``location``
    so they survive a restart: that is what the upload-resumption test needs.
    """

    def __init__(self, location: Path, *, in_memory: bool = True, port: int | None = None) -> None:
        if not AZURITE_BLOB.exists():
            raise AzuriteMissing(
                f"Azurite is not installed ({AZURITE_BLOB} missing): run `make test-deps` first"
            )
        self.location = Path(location)
        self.location.mkdir(parents=True, exist_ok=True)
        self.in_memory = in_memory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Start the server and wait until its port accepts connections."""
        if self.process is not None:
            raise RuntimeError("Azurite is already running")
        cmd = [
            str(AZURITE_BLOB),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(self.port),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ]
        # Azurite refuses --location together with --inMemoryPersistence; the folder
        # then only holds our log file.
        cmd += ["--inMemoryPersistence"] if self.in_memory else ["--location", str(self.location)]
        log = open(self.location / "azurite.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = (self.location / "azurite.log").read_text(errors="replace")[-2000:]
                self.process = None
                raise RuntimeError(f"Azurite exited at start-up: {text}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Azurite did not answer on 127.0.0.1:{self.port} within {timeout_s} s")

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the whole process group: SIGTERM (Azurite saves its state), then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
        # Children (if any) share the group: make sure none outlives the server.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> AzuriteServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def azurite_server(tmp_dir: Path, *, in_memory: bool = True) -> Iterator[str]:
    """Run Azurite on a free loopback port for the block; yield its connection string."""
    with AzuriteServer(Path(tmp_dir), in_memory=in_memory) as server:
        yield server.connection_string


def started_azurite(tmp_dir: Path, *, in_memory: bool = True) -> Iterator[AzuriteServer]:
    """For fixtures (``yield from``): a started Azurite, stopped afterwards. A missing emulator is a
    broken set-up, not an optional feature: the test fails loudly."""
    import pytest

    try:
        server = AzuriteServer(Path(tmp_dir), in_memory=in_memory)
    except AzuriteMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
