"""Choosing the model: the order (explicit, configured, demo), every message, and the per-version cache."""
from __future__ import annotations

import os
import threading

import pytest
import torch

import resources
from core.errors import ModelFileError
from core.model.network import Conv2DNet
from core.model.choice import (
    HOW_TO_FIX,
    MSG_CONFIGURED_MISSING,
    MSG_DEMO_MISSING,
    MSG_EXPLICIT_MISSING,
    MSG_NONE_CHOSEN,
    load_model_cached,
    resolve_model,
    resolve_model_path,
)
from core.model.files import save_model


def _save(path, seed=0, version="1"):
    torch.manual_seed(seed)
    save_model(path, Conv2DNet(n_bands=25), name="choice-test", version=version, class_ids=(1, 2, 3, 4, 5),
               class_names=("a", "b", "c", "d", "e"), profile_id="synthetic-small")
    return path


@pytest.fixture
def demo(tmp_path, monkeypatch):
    path = tmp_path / "demo.safetensors"
    monkeypatch.setattr(resources, "DEMO_MODEL_PATH", path)
    return path


def test_order_explicit_then_configured_then_demo(tmp_path, demo):
    explicit, configured = _save(tmp_path / "e.safetensors"), _save(tmp_path / "c.safetensors")
    _save(demo)
    assert resolve_model_path(explicit, configured) == explicit
    assert resolve_model_path(None, configured) == configured
    assert resolve_model_path("", "  ") == demo  # blank settings fields count as not given
    assert resolve_model_path(None, None) == demo


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("explicit missing", MSG_EXPLICIT_MISSING),
        ("configured missing", MSG_CONFIGURED_MISSING),
        ("demo missing", MSG_DEMO_MISSING),
        ("demo not allowed", MSG_NONE_CHOSEN),
    ],
)
def test_every_message_names_the_file_and_says_how_to_fix(tmp_path, demo, case, message):
    _save(demo) if case in ("explicit missing", "configured missing", "demo not allowed") else None
    gone = tmp_path / "gone.safetensors"
    call = {
        "explicit missing": lambda: resolve_model_path(gone, demo),  # never silently the configured or demo model
        "configured missing": lambda: resolve_model_path(None, gone),
        "demo missing": lambda: resolve_model_path(None, None),
        "demo not allowed": lambda: resolve_model_path(None, None, allow_demo=False),
    }[case]
    with pytest.raises(ModelFileError) as err:
        call()
    text = str(err.value)
    assert err.value.problem == message and text.endswith(HOW_TO_FIX)
    for fix in ("Settings ▸ Model", "--model", "make demo-model"):
        assert fix in text
    named = {"explicit missing": gone, "configured missing": gone, "demo missing": demo, "demo not allowed": None}[case]
    assert err.value.path == (None if named is None else str(named))
    assert len({MSG_EXPLICIT_MISSING, MSG_CONFIGURED_MISSING, MSG_DEMO_MISSING, MSG_NONE_CHOSEN}) == 4


def test_resolve_model_loads_once_per_file_version_and_across_threads(tmp_path, demo):
    path = _save(tmp_path / "m.safetensors")
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(resolve_model(path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loaded) == 4 and all(m is loaded[0] for m in loaded)
    assert load_model_cached(path) is loaded[0]
    _save(path, seed=1, version="2")  # a new version of the same file is loaded again
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    again = resolve_model(path)
    assert again is not loaded[0] and again.info.version == "2"
