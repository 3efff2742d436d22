"""Interrupted uploads resume with the blocks already staged; nothing already sent is sent again."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient

from remote.blob_storage import BlobStorage, StorageError

KiB = 1024
BLOCK = 64 * KiB


class Interrupted(Exception):
    pass


def random_file(path, size, seed=0):
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def uncommitted_ids(connection_string, container, blob_name):
    blob = BlobServiceClient.from_connection_string(connection_string).get_blob_client(container, blob_name)
    return {b.id for b in blob.get_block_list("uncommitted")[1]}


def test_resume_after_an_interrupted_upload_sends_only_missing_blocks(
    storage_connection_string, container_name, tmp_path
):
    src = random_file(tmp_path / "f.bin", 20 * BLOCK + 123)  # 21 blocks
    first = BlobStorage(storage_connection_string, container=container_name, block_size=BLOCK, max_concurrency=2)

    def stop_after_five(done, total):
        if done >= 5 * BLOCK:
            raise Interrupted("connection lost")

    with pytest.raises(Interrupted):
        first.upload_file(src, "x/f.bin", progress=stop_after_five)
    staged = uncommitted_ids(storage_connection_string, container_name, "x/f.bin")
    assert 5 <= len(staged) < 21 and first.stats.files_committed == 0

    second = BlobStorage(storage_connection_string, container=container_name, block_size=BLOCK, max_concurrency=4)
    progress = []
    sha = second.upload_file(src, "x/f.bin", progress=lambda d, t: progress.append(d))
    assert second.stats.blocks_reused == len(staged)
    assert second.stats.blocks_staged == 21 - len(staged)
    assert progress[0] > 0  # progress starts from what was already there
    assert sha == hashlib.sha256(src.read_bytes()).hexdigest()
    assert second.download_file("x/f.bin", tmp_path / "back").read_bytes() == src.read_bytes()


def test_staged_blocks_of_an_older_file_version_are_not_reused(storage_connection_string, container_name, tmp_path):
    src = random_file(tmp_path / "f.bin", 6 * BLOCK)
    first = BlobStorage(storage_connection_string, container=container_name, block_size=BLOCK, max_concurrency=1)

    def stop_early(done, total):
        if done >= 3 * BLOCK:
            raise Interrupted()

    with pytest.raises(Interrupted):
        first.upload_file(src, "x/f.bin", progress=stop_early)
    random_file(src, 6 * BLOCK, seed=1)  # the file changed before the retry
    second = BlobStorage(storage_connection_string, container=container_name, block_size=BLOCK)
    second.upload_file(src, "x/f.bin")
    assert (second.stats.blocks_reused, second.stats.blocks_staged) == (0, 6)
    assert second.download_file("x/f.bin", tmp_path / "back").read_bytes() == src.read_bytes()


def test_resume_after_storage_goes_down_mid_upload(restartable_azurite, make_dataset, tmp_path):
    """Azurite stops part-way (a real outage): one clear error, then a resume after restart."""
    server = restartable_azurite
    folder = make_dataset(patients=("ID18",), height=30, width=40)
    small = 4 * KiB  # tiny blocks so a tiny capture spans many of them
    first = BlobStorage(server.connection_string, block_size=small, max_concurrency=2, retries=0)

    def outage(done, total):
        if done >= 20 * small and server.process is not None:
            server.stop()

    with pytest.raises(StorageError, match="unreachable") as err:
        first.upload_dataset(folder, progress=outage)
    assert "\n" not in str(err.value)
    assert first.stats.blocks_staged >= 20 and first.stats.files_committed < 5

    server.start()
    second = BlobStorage(server.connection_string, block_size=small, max_concurrency=4)
    second.upload_dataset(folder)
    total_blocks = sum(-(-p.stat().st_size // small) for p in (folder / "ID0018C01").iterdir())
    stats = second.stats
    # Every block is either reused from before the outage or sent now: none twice.
    assert stats.blocks_staged + stats.blocks_reused + stats.blocks_skipped == total_blocks
    assert stats.blocks_reused + stats.blocks_skipped >= 20
    down = second.download_dataset("ds", tmp_path / "down")
    for p in (folder / "ID0018C01").iterdir():
        assert (down / "ID0018C01" / p.name).read_bytes() == p.read_bytes()


def test_a_staged_block_of_the_wrong_length_is_sent_again(storage_connection_string, container_name, tmp_path):
    from remote.blob_storage import block_id, file_digests

    src = random_file(tmp_path / "f.bin", 3 * BLOCK)
    sha, _ = file_digests(src, md5=False)
    blob = BlobServiceClient.from_connection_string(storage_connection_string).get_blob_client(
        container_name, "x/f.bin"
    )
    BlobStorage(storage_connection_string, container=container_name).check()
    # Block 1's id (content, block size, index) with half its bytes: a truncated earlier attempt.
    blob.stage_block(block_id(sha, BLOCK, 1), src.read_bytes()[BLOCK : BLOCK + BLOCK // 2])
    storage = BlobStorage(storage_connection_string, container=container_name, block_size=BLOCK)
    storage.upload_file(src, "x/f.bin")
    assert (storage.stats.blocks_reused, storage.stats.blocks_staged) == (0, 3)
    assert storage.download_file("x/f.bin", tmp_path / "back").read_bytes() == src.read_bytes()
