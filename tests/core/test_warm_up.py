"""``warm_up``: the process's first classification is paid at start, through the path real captures take."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_warm_up_takes_the_metadata_path_of_real_captures():
    """After warm_up, resolving a profile from camera metadata imports nothing new (scipy.optimize was the
    first scoring request's 0.6-1.2 s); a model of an unknown profile is skipped, not an error."""
    code = """
import sys
from dataclasses import replace
from core.model.choice import resolve_model
from core.model.inference import warm_up
from resources import DEMO_MODEL_PATH
model = resolve_model(DEMO_MODEL_PATH, allow_demo=True)
assert "scipy.optimize" not in sys.modules
took = warm_up(model)
assert took is not None and took > 0, took
assert "scipy.optimize" in sys.modules
other = replace(model, info=replace(model.info, profile_id="no-such-profile"))
assert warm_up(other) is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
