"""Fixtures for the remote tier: one Azurite per test session, plus a restartable one on demand."""
from __future__ import annotations

import uuid

import pytest

from tests.support.azurite import AzuriteServer, started_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> AzuriteServer:
    """The session's Azurite (in-memory) on a free 127.0.0.1 port; stopped at the end."""
    yield from started_azurite(tmp_path_factory.mktemp("azurite"))


@pytest.fixture
def storage_connection_string(azurite) -> str:
    """Connection string of the session's Azurite."""
    return azurite.connection_string


@pytest.fixture
def container_name() -> str:
    """A fresh container name per test, so tests sharing one Azurite never see each other's blobs."""
    return f"t{uuid.uuid4().hex[:20]}"


@pytest.fixture
def restartable_azurite(tmp_path):
    """An Azurite of this test's own, persisted on disk, that the test may stop and restart."""
    yield from started_azurite(tmp_path / "azurite-disk", in_memory=False)


@pytest.fixture
def make_dataset(tmp_path):
    """Factory: a real dataset folder of tiny synthetic captures (core.capture.synthetic.captures + core.dataset.folders)."""
    from core.dataset.folders import write_capture_folder
    from core.capture.synthetic.captures import generate_capture, small_profile

    def make(name="ds", patients=("ID18", "ID20"), *, height=20, width=30):
        root = tmp_path / name
        profile = small_profile(height, width)
        for k, patient in enumerate(patients):
            cap = generate_capture(seed=k, patient=patient, profile=profile)
            write_capture_folder(
                root, cap.capture_id, cap.raw, cap.dark, cap.white, cap.labels,
                metadata=cap.metadata, meta={"patient": patient, "source": "synthetic"},
            )
        return root

    return make
