"""A file edited during its upload is refused before commit, so its recorded sha256 is always of the bytes sent."""
from __future__ import annotations

import hashlib

import pytest

from remote.blob_storage import BlobStorage, FileChangedError

BLOCK = 1024


def storage(conn, container):
    return BlobStorage(conn, container=container, block_size=BLOCK, max_concurrency=1, retries=0, timeout_s=5.0)


def edit_at(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["block already sent", "block not sent yet"])
def test_a_file_changed_during_upload_is_not_committed(storage_connection_string, container_name, tmp_path, where):
    src = tmp_path / "white.tif"
    src.write_bytes(bytes(range(256)) * 16)  # 4 blocks
    store = storage(storage_connection_string, container_name)
    calls = []

    def edit_once(done, total):  # called after each staged block, from the upload thread
        calls.append(done)
        if len(calls) == 1:
            edit_at(src, 10 if where == "block already sent" else 3 * BLOCK + 5)

    with pytest.raises(FileChangedError) as err:
        store.upload_file(src, "d/white.tif", progress=edit_once)
    assert str(src) in str(err.value) and "changed while uploading" in str(err.value)
    assert not any(b.name == "d/white.tif" for b in store._container.list_blobs())  # nothing committed
    # uploading again (file now stable) commits the new content under its own sha256
    sha = store.upload_file(src, "d/white.tif")
    assert sha == hashlib.sha256(src.read_bytes()).hexdigest()
    store.download_file("d/white.tif", tmp_path / "back.tif")
    assert (tmp_path / "back.tif").read_bytes() == src.read_bytes()
