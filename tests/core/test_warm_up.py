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


def test_full_sensor_warm_up_runs_the_network_at_the_size_real_captures_have(monkeypatch):
    """The GUI's loader and each live classifier warm at the camera's full size (the runtime's buffers
    are per size), the whole pipeline through: preparation, network, out-of-distribution check."""
    import core.model.inference as inference
    from core.capture.camera_profiles import load_profile
    from core.model.choice import resolve_model
    from resources import DEMO_MODEL_PATH

    model = resolve_model(DEMO_MODEL_PATH, allow_demo=True)
    shapes = []
    real = inference.predict_dense

    def recording(net, data, **kwargs):
        shapes.append(data.shape)
        return real(net, data, **kwargs)

    monkeypatch.setattr(inference, "predict_dense", recording)
    profile = load_profile(model.info.profile_id)
    ood = []
    real_trust = inference.trust_of  # quality + out-of-distribution check of each map
    monkeypatch.setattr(inference, "trust_of", lambda *a, **k: ood.append(1) or real_trust(*a, **k))
    assert inference.warm_up(model, threads=1, full_sensor=True) > 0
    assert shapes == [profile.cube_shape] and ood == [1]  # (217, 409, 25): the full sensor's cube
