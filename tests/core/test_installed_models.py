"""The installed-model store: one history.json every classify reads; install, revert, versions, crash repair."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from core.errors import ModelFileError
from core.model.choice import MSG_INSTALLED_MISSING, resolve_model_path
from core.model.files import save_model
from core.model.installed import ModelStore
from core.model.network import Conv2DNet


def model(path, version, seed=0):
    torch.manual_seed(seed)
    save_model(path, Conv2DNet(25, 5), name="conv2dnet-ds", version=str(version), class_ids=(1, 2, 3, 4, 5),
               class_names=tuple("abcde"), profile_id="p")
    return path


def test_install_revert_and_every_reader_agree(tmp_path, monkeypatch):
    import resources

    demo = model(tmp_path / "demo.safetensors", 1, seed=9)
    monkeypatch.setattr(resources, "DEMO_MODEL_PATH", demo)
    store = ModelStore(tmp_path / "models")
    assert store.current() is None and resolve_model_path(None, models_dir=store.models_dir) == demo
    first = store.install(model(tmp_path / "a.safetensors", 1), verdict="Recommended.", via="gui")
    second = store.install(model(tmp_path / "b.safetensors", 2, seed=1), override="test override: tumour data thin")
    assert first.path != second.path and first.path.endswith("conv2dnet-ds-v1.safetensors")
    assert resolve_model_path(None, models_dir=store.models_dir) == store.current_path()
    assert str(store.current_path()) == second.path and second.previous == first.path
    assert second.shown == "conv2dnet-ds v2" and second.user and len(second.sha256) == 64
    # a new store object (a re-opened dialog, a restarted app, the CLI) sees the same
    again = ModelStore(tmp_path / "models")
    assert again.revert_target().path == first.path
    reverted = again.revert(via="cli")
    assert reverted.action == "revert" and reverted.shown == "conv2dnet-ds v1"
    assert str(ModelStore(tmp_path / "models").current_path()) == str(store.current_path()) == first.path
    assert resolve_model_path(None, models_dir=store.models_dir).name == "conv2dnet-ds-v1.safetensors"
    # revert by version, and back to the demo model from the first install
    assert store.revert("v2").path == second.path
    assert store.revert("1").path == first.path
    assert store.revert().path == ""  # before the first install: the demo model
    assert resolve_model_path(None, models_dir=store.models_dir) == demo
    with pytest.raises(ModelFileError, match="no installed model of version 9"):
        store.revert("9")
    history = json.loads(store.path.read_text())["entries"]
    assert [e["action"] for e in history] == ["install", "install", "revert", "revert", "revert", "revert"]
    assert history[1]["override"] == "test override: tumour data thin" and history[0]["verdict"] == "Recommended."


def test_an_installed_file_that_is_gone_is_an_error_not_the_demo_model(tmp_path):
    store = ModelStore(tmp_path / "models")
    entry = store.install(model(tmp_path / "a.safetensors", 1))
    os.unlink(entry.path)
    with pytest.raises(ModelFileError) as err:
        resolve_model_path(None, models_dir=store.models_dir)
    assert err.value.problem == MSG_INSTALLED_MISSING
    assert resolve_model_path(tmp_path / "a.safetensors", models_dir=store.models_dir).name == "a.safetensors"


def test_a_corrupt_file_is_refused_before_anything_is_written(tmp_path):
    store = ModelStore(tmp_path / "models")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        store.install(bad)
    assert store.entries() == [] and not list(store.models_dir.glob("*.safetensors"))


def test_versions_are_handed_out_once_per_base_name(tmp_path):
    store = ModelStore(tmp_path / "models")
    assert [store.next_version("conv2dnet") for _ in range(3)] == [1, 2, 3]
    assert ModelStore(tmp_path / "models").next_version("other") == 1


def test_a_garbled_history_counts_as_empty_and_hand_edited_entries_are_skipped(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.models_dir.mkdir()
    store.path.write_text("[" * 100_000)  # deeply nested garbage: no RecursionError
    assert store.entries() == []
    store.path.write_text(json.dumps({"entries": [{"action": "install"}, 3, {"action": "install", "path": "",
                                                   "label": "", "previous": "", "when": "", "extra": 1}]}))
    assert [e.path for e in store.entries()] == [""]


_INSTALL_FOREVER = """
import sys, time
from core.model.files import load_model
from core.model.installed import ModelStore
store = ModelStore(sys.argv[1])
load_model(sys.argv[2])  # torch loaded: the kill lands among installs, not imports
print("ready", flush=True)
while True:
    store.install(sys.argv[2])
"""


def test_kill_9_during_installs_leaves_nothing_unlisted(tmp_path):
    """A process killed mid-install leaves models missing from the history and temp files: reconcile finds both."""
    src = model(tmp_path / "a.safetensors", 1)
    models = tmp_path / "models"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", _INSTALL_FOREVER, str(models), str(src)], env=env,
                                stdout=subprocess.PIPE)
        proc.stdout.readline()
        time.sleep(0.4)
        proc.kill()
        proc.wait()
    store = ModelStore(models)
    # leave one of each kind for certain (the kills may or may not have hit those moments)
    (models / ".orphan-v1.safetensors.abc.tmp").write_bytes(b"partial")
    (models / "conv2dnet-ds-v1-999.safetensors").write_bytes(src.read_bytes())
    found = store.reconcile()
    listed = {e.path for e in store.entries()}
    on_disk = {str(p) for p in models.glob("*.safetensors")}
    assert set(map(str, found.orphans)) == on_disk - listed
    assert models / "conv2dnet-ds-v1-999.safetensors" in found.orphans
    assert not list(models.glob(".*.tmp")) and any(p.name.startswith(".orphan") for p in found.removed)
    assert json.loads(store.path.read_text())  # never torn: the atomic write and the lock
