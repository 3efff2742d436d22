"""Blob storage against Azurite: chunked upload, verification, listing and download."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from azure.storage.blob import BlobServiceClient

from core.fileio import stale_temp_files
from remote.blob_storage import MODEL_FILE, SHA256_KEY, BlobStorage, IntegrityError, StorageError

KiB = 1024


def random_file(path, size, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


@pytest.fixture
def storage(storage_connection_string, container_name):
    return BlobStorage(storage_connection_string, container=container_name, block_size=64 * KiB, max_concurrency=4)


@pytest.fixture
def raw_container(storage_connection_string, container_name):
    return BlobServiceClient.from_connection_string(storage_connection_string).get_container_client(container_name)


def test_chunked_upload_records_checksums_and_round_trips(storage, raw_container, tmp_path):
    src = random_file(tmp_path / "big.bin", 1_000_000)
    seen = []
    sha = storage.upload_file(src, "x/big.bin", progress=lambda done, total: seen.append((done, total)))

    n_blocks = -(-1_000_000 // (64 * KiB))
    assert storage.stats.blocks_staged == n_blocks == 16
    assert sha == hashlib.sha256(src.read_bytes()).hexdigest()
    blob = raw_container.get_blob_client("x/big.bin")
    props = blob.get_blob_properties()
    assert props.metadata[SHA256_KEY] == sha
    assert len(blob.get_block_list("committed")[0]) == n_blocks
    # Progress is cumulative, ends at the total and never goes backwards.
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1] == (1_000_000, 1_000_000)

    out = storage.download_file("x/big.bin", tmp_path / "back.bin")
    assert out.read_bytes() == src.read_bytes()


def test_single_block_file_gets_content_md5(storage, raw_container, tmp_path):
    src = random_file(tmp_path / "small.bin", 10 * KiB)
    storage.upload_file(src, "x/small.bin")
    props = raw_container.get_blob_client("x/small.bin").get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(src.read_bytes()).digest()


def test_a_committed_file_is_not_sent_again(storage, tmp_path):
    src = random_file(tmp_path / "f.bin", 200 * KiB)
    storage.upload_file(src, "x/f.bin")
    sent = storage.stats.blocks_staged
    storage.upload_file(src, "x/f.bin")
    assert storage.stats.blocks_staged == sent and storage.stats.files_skipped == 1
    # A changed file is uploaded again, in full.
    random_file(src, 200 * KiB, seed=5)
    storage.upload_file(src, "x/f.bin")
    assert storage.stats.blocks_staged == sent + 4


def test_empty_file_uploads(storage, tmp_path):
    src = tmp_path / "empty.json"
    src.write_bytes(b"")
    storage.upload_file(src, "x/empty.json")
    assert storage.download_file("x/empty.json", tmp_path / "e2").read_bytes() == b""


def test_dataset_upload_list_and_download(storage, make_dataset, tmp_path):
    folder = make_dataset("ward7")
    progress = []
    name = storage.upload_dataset(folder, progress=lambda d, t: progress.append((d, t)))
    assert name == "ward7"
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert progress[-1] == (total, total)

    [listed] = storage.list_datasets()
    assert (listed.name, listed.capture_ids, listed.n_files, listed.complete) == (
        "ward7", ("ID0018C01", "ID0020C01"), 10, True
    )
    assert listed.size_bytes == total
    manifest = storage.dataset_manifest("ward7")
    assert {f["path"] for f in manifest["files"]} == {
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
    }

    dest = storage.download_dataset("ward7", tmp_path / "down")
    for p in folder.rglob("*"):
        if p.is_file():
            assert (dest / p.relative_to(folder)).read_bytes() == p.read_bytes()
    assert not list(dest.rglob("*.tmp"))  # no temporary file of core.fileio.atomic_write left


def test_a_folder_that_is_not_a_dataset_is_refused(storage, tmp_path):
    (tmp_path / "junk" / "ID1").mkdir(parents=True)
    (tmp_path / "junk" / "ID1" / "raw.tif").write_bytes(b"x")
    with pytest.raises(ValueError, match="lacks"):
        storage.upload_dataset(tmp_path / "junk")


def test_dataset_name_is_validated(storage, make_dataset):
    folder = make_dataset()
    with pytest.raises(StorageError, match="invalid dataset name"):
        storage.upload_dataset(folder, name="../escape")


def test_model_upload_list_download(storage, tmp_path):
    model = random_file(tmp_path / "m.safetensors", 150 * KiB)
    blob = storage.upload_model(model, "conv2dnet", "v3", metrics={"oacc": 0.91})
    assert blob == f"models/conv2dnet/v3/{MODEL_FILE}"
    [entry] = storage.list_models()
    assert (entry.name, entry.version, entry.size_bytes, entry.has_metrics) == ("conv2dnet", "v3", 150 * KiB, True)
    assert entry.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert storage.model_metrics("conv2dnet", "v3") == {"oacc": 0.91}
    assert storage.model_metrics("conv2dnet", "nope") is None
    out = storage.download_model("conv2dnet", "v3", tmp_path / "fetched.safetensors")
    assert out.read_bytes() == model.read_bytes()


def test_corrupted_blob_is_detected_on_download(storage, raw_container, tmp_path):
    src = random_file(tmp_path / "f.bin", 300 * KiB)
    storage.upload_file(src, "x/f.bin")
    blob = raw_container.get_blob_client("x/f.bin")
    meta = blob.get_blob_properties().metadata
    damaged = bytearray(src.read_bytes())
    damaged[1000] ^= 0xFF
    blob.upload_blob(bytes(damaged), overwrite=True, metadata=meta)  # same recorded sha256, other bytes

    dest = tmp_path / "out.bin"
    with pytest.raises(IntegrityError, match="corrupted"):
        storage.download_file("x/f.bin", dest)
    assert not dest.exists() and stale_temp_files(tmp_path, "out.bin") == []
    dest.write_bytes(b"the old file")  # a failed download leaves what was there
    with pytest.raises(IntegrityError, match="corrupted"):
        storage.download_file("x/f.bin", dest)
    assert dest.read_bytes() == b"the old file" and stale_temp_files(tmp_path, "out.bin") == []


def test_corrupted_dataset_file_is_detected(storage, raw_container, make_dataset, tmp_path):
    folder = make_dataset(patients=("ID18",))
    storage.upload_dataset(folder)
    blob = raw_container.get_blob_client("datasets/ds/ID0018C01/labels.png")
    meta = blob.get_blob_properties().metadata
    blob.upload_blob(b"not the labels", overwrite=True, metadata=meta)
    with pytest.raises(IntegrityError, match="labels.png"):
        storage.download_dataset("ds", tmp_path / "down")


def test_missing_dataset_and_model_give_clear_errors(storage, tmp_path):
    storage.check()
    with pytest.raises(StorageError, match="dataset 'nothing' not found"):
        storage.download_dataset("nothing", tmp_path / "d")
    with pytest.raises(StorageError, match="not found"):
        storage.download_model("m", "1", tmp_path / "m.safetensors")


def test_manifest_lists_every_file_with_its_sha256(storage, raw_container, make_dataset):
    folder = make_dataset(patients=("ID25",))
    storage.upload_dataset(folder, name="renamed")
    manifest = json.loads(raw_container.download_blob("datasets/renamed/manifest.json").readall())
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest()


def test_download_checks_the_sha256_the_caller_expects(storage, tmp_path):
    src = random_file(tmp_path / "f.bin", 10 * KiB)
    storage.upload_file(src, "x/f.bin")
    dest = tmp_path / "out.bin"
    with pytest.raises(IntegrityError, match="expected sha256 000000000000"):
        storage.download_file("x/f.bin", dest, expected_sha256="0" * 64)
    assert not dest.exists()
    right = hashlib.sha256(src.read_bytes()).hexdigest()
    assert storage.download_file("x/f.bin", dest, expected_sha256=right).read_bytes() == src.read_bytes()


def test_a_manifest_path_leaving_the_folder_is_refused(storage, raw_container, make_dataset, tmp_path):
    folder = make_dataset(patients=("ID18",))
    storage.upload_dataset(folder)
    manifest = json.loads(raw_container.download_blob("datasets/ds/manifest.json").readall())
    manifest["files"][0]["path"] = "ID0018C01/../../escaped.tif"
    data = json.dumps(manifest).encode()
    raw_container.upload_blob("datasets/ds/manifest.json", data, overwrite=True,
                              metadata={SHA256_KEY: hashlib.sha256(data).hexdigest()})
    with pytest.raises(StorageError, match="unsafe path 'ID0018C01/../../escaped.tif'"):
        storage.download_dataset("ds", tmp_path / "down" / "ds")
    assert not (tmp_path / "escaped.tif").exists() and not (tmp_path / "down" / "escaped.tif").exists()


@pytest.mark.parametrize("name", ["a..b", "../x", "-lead", "a/b", "x" * 129])
def test_dataset_and_model_names_that_could_escape_are_refused(storage, tmp_path, name):
    model = random_file(tmp_path / "m.safetensors", KiB)
    with pytest.raises(StorageError, match="invalid model name"):
        storage.upload_model(model, name, "1")
    with pytest.raises(StorageError, match="invalid model version name"):
        storage.download_model("m", name, tmp_path)


def test_storage_errors_never_carry_a_remembered_secret():
    from core.redaction import remember_secret

    secret = "Zm9vYmFyLXNlY3JldC1rZXktMTIzNDU2"
    remember_secret(secret)
    message = str(StorageError(f"request with key {secret}\nfailed"))
    assert secret not in message and "\n" not in message and message.startswith("request with key ")
