"""Benchmark: reduced-precision inference against float32, on a synthetic and on real-data captures.

The parity rule for any faster numeric path (issue 27): at most 0.1 % of labels changed
against float32 and every probability within 0.01, on the demo capture and on real tissue.
Compared here, with the demo model on one torch thread: bfloat16 (oneDNN autocast) for the
whole network and for each layer alone, and ONNX Runtime in float32 (the shipped CPU runtime,
core.model.ort_runtime; torch is its fallback). CPU ms is ``time.process_time`` (median).

Real-data captures: the labelled pixels of each NEMESIS ground-truth map
(``../shared/data/nemesis-public``) hold their real spectra (MATLAB column order); every other
pixel takes the spectrum of its nearest labelled pixel, so each cube is real tissue at the
map's real size and layout.

    .venv/bin/python tests/bench/bench_precision.py [--data ../shared/data/nemesis-public]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.capture.camera_profiles import THESIS_PROFILE_ID, load_profile  # noqa: E402
from core.capture.synthetic.captures import generate_capture  # noqa: E402
from core.model.choice import resolve_model  # noqa: E402
from core.model.inference import _softmax_last, prepare  # noqa: E402
from core.model.live import dense_net  # noqa: E402
from tests.support.real_cubes import NEMESIS_FOLDER, real_cubes  # noqa: E402

LABELS_CHANGED_MAX = 0.001
PROBABILITY_ATOL = 0.01


def timed(fn, repeats: int = 5):
    fn()
    cpu = []
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        cpu.append(time.process_time() - start)
    return out, 1000 * float(np.median(cpu))


def variants(dense) -> dict:
    cl = torch.channels_last

    def layered(bf_conv: bool, bf_fc1: bool, bf_fc2: bool):
        def run(x):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf_conv):
                y = dense.conv(x.contiguous(memory_format=cl))
            y = torch.relu(dense.pool(y.float())).contiguous(memory_format=cl)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf_fc1):
                y = torch.relu(dense.fc1(y))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf_fc2):
                y = dense.fc2(y.float().contiguous(memory_format=cl))
            return y.float()
        return run

    out = {
        "float32 (torch, oneDNN, channels_last, fallback)": dense.forward_padded,
        "bfloat16, whole network": layered(True, True, True),
        "bfloat16, first convolution only": layered(True, False, False),
        "bfloat16, fc1 only": layered(False, True, False),
        "bfloat16, fc2 only": layered(False, False, True),
    }
    try:
        import onnxruntime as ort
    except ImportError:
        return out
    from core.model.ort_runtime import session_for

    session = session_for(dense, dense.padding, lambda: dense, 1)  # the product's own graph and session (core.model.ort_runtime)
    out[f"float32 (ONNX Runtime {ort.__version__}, shipped)"] = lambda x: torch.from_numpy(
        session.run(None, {"padded_cube": np.ascontiguousarray(x.numpy())})[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=NEMESIS_FOLDER)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = resolve_model(None)
    dense = dense_net(model)
    dense.requires_grad_(False)
    synthetic = prepare(generate_capture(seed=1, profile=load_profile(THESIS_PROFILE_ID)).to_capture()).cube.data
    cubes = {"synthetic demo capture (217 x 409)": synthetic}
    cubes.update({f"real {cid} {c.shape[0]} x {c.shape[1]}": c for cid, c in real_cubes(args.data).items()})
    load = os.getloadavg()[0]
    print(f"demo model, 1 torch thread, load average {load:.2f} (2-core VM shared with other work)")
    print(f"{'capture':<36} {'variant':<42} {'CPU ms':>7} {'labels changed %':>17} {'max |dp|':>9} {'parity':>7}")
    for name, cube in cubes.items():
        padded = np.pad(cube, ((3, 3), (3, 3), (0, 0)), mode="reflect")
        x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0)
        reference = None
        with torch.inference_mode():
            for label, fn in variants(dense).items():
                logits, ms = timed(lambda: fn(x))
                probs = _softmax_last(logits[0].permute(1, 2, 0).contiguous().numpy())
                if reference is None:
                    reference = probs
                changed = float(np.mean(probs.argmax(-1) != reference.argmax(-1)))
                dp = float(np.abs(probs - reference).max())
                ok = changed <= LABELS_CHANGED_MAX and dp <= PROBABILITY_ATOL
                print(f"{name:<36} {label:<42} {ms:>7.1f} {100 * changed:>17.3f} {dp:>9.4f} {'yes' if ok else 'NO':>7}")


if __name__ == "__main__":
    main()
