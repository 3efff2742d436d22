"""``neurohsi serve`` without --model serves the installed model (the store), never the demo model silently."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from core.model.files import save_model
from core.model.installed import ModelStore
from core.model.network import Conv2DNet


def _serve(tmp_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app.cli.main", "serve", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()}, start_new_session=True)


def test_serve_names_the_installed_model_or_says_how_to_install_one(tmp_path):
    process = _serve(tmp_path)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "no model chosen" in output and "neurohsi model install" in output
    torch.manual_seed(0)
    save_model(tmp_path / "m.safetensors", Conv2DNet(25, 5), name="served", version="4", class_ids=(1, 2, 3, 4, 5),
               class_names=tuple("abcde"), profile_id="thesis-sm5x5-nir")
    ModelStore().install(tmp_path / "m.safetensors")
    process = _serve(tmp_path)
    try:
        banner = [process.stdout.readline() for _ in range(2)]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert banner[0].startswith("NeuroHSI scoring service: http://127.0.0.1:")
    assert banner[1].startswith("model served v4 ("), banner
