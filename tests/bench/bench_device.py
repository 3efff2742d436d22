"""CUDA against CPU inference: the same maps within the parity rule, and the time of each.

Run on a machine with a GPU (``python tests/bench/bench_device.py``); on one without, it says so.
Parity rule (issue 27): at most 0.1 % of labels differ, probabilities within 0.01. Not part of
``make test``: CI machines have no GPU, and a test that can only skip there would prove nothing.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.model.inference import predict_dense  # noqa: E402
from core.model.network import Conv2DNet  # noqa: E402


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to compare (the device choice is tested in tests/core/test_device.py)")
        return 0
    torch.manual_seed(0)
    net = Conv2DNet().eval()
    cube = np.random.default_rng(1).standard_normal((217, 409, 25)).astype(np.float32)
    rows = []
    for device in ("cpu", "cuda"):
        predict_dense(net, cube, device=device)  # warm-up (weights copied, kernels chosen)
        times = []
        for _ in range(10):
            start = time.perf_counter()
            probs, labels = predict_dense(net, cube, device=device)
            times.append(time.perf_counter() - start)
        rows.append((device, probs, labels, 1000 * float(np.median(times))))
    (_, p_cpu, l_cpu, t_cpu), (_, p_gpu, l_gpu, t_gpu) = rows
    changed = float(np.mean(l_cpu != l_gpu))
    worst = float(np.abs(p_cpu - p_gpu).max())
    print("| device | full cube (217 x 409 x 25), median of 10 |")
    print("|---|---:|")
    print(f"| cpu | {t_cpu:.1f} ms |")
    print(f"| cuda ({torch.cuda.get_device_name(0)}) | {t_gpu:.1f} ms |")
    ok = changed <= 0.001 and worst <= 0.01
    print(f"labels changed {100 * changed:.3f} %, largest probability difference {worst:.2e}: "
          f"parity rule {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
