"""Where the first remote classify's time goes: first vs second map from a freshly started service.

The GUI once took 1.9 s for its first remote map and 0.74 s for the next (loopback). This
script starts the real azureml-inference-server-http on 127.0.0.1 with the demo model,
then classifies one full-sensor synthetic capture through
``remote.remote_or_local.classify_remote_or_local`` (the GUI's call) three times: the
first request of a fresh client to a fresh service, the second (references cached), and a
first request of a fresh client to the now-warm service. It prints the client's and the
service's per-stage timings for each, so the difference can be read off.

Usage: .venv/bin/python tests/bench/bench_remote_first.py [--captures N]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    t0 = time.perf_counter()
    from core.capture.files import Capture
    from core.capture.synthetic.captures import generate_capture
    from core.model.inference import prepare
    import_core = time.perf_counter() - t0
    t0 = time.perf_counter()
    from remote.remote_or_local import RemotePolicy, RemoteTarget, classify_remote_or_local, drop_clients
    from remote.scoring_server import local_scoring_server
    import_remote = time.perf_counter() - t0
    from resources import DEMO_MODEL_PATH

    synthetic = generate_capture(seed=11)
    capture = Capture(synthetic.raw, synthetic.dark, synthetic.white, synthetic.metadata, capture_id="ID0011C01")
    prepared = prepare(capture)
    rows = []
    with local_scoring_server(DEMO_MODEL_PATH) as url:
        target, policy = RemoteTarget(url), RemotePolicy(deadline_s=60)
        for label in ("1st map, fresh client, fresh service", "2nd map, same client",
                      "1st map, fresh client, warm service"):
            if label.endswith("warm service"):
                drop_clients()
            start = time.perf_counter()
            outcome = classify_remote_or_local(prepared, model_resolver=lambda: None, endpoint=target,
                                               fallback_local=False, policy=policy)
            wall = time.perf_counter() - start
            rows.append((label, wall, outcome.result.timings_s))
    print(f"imports: core {1000 * import_core:.0f} ms, remote client {1000 * import_remote:.0f} ms")
    keys = ("encode", "upload", "server", "preprocess", "infer")
    print("| request | wall | " + " | ".join(keys) + " |")
    print("|---|---:|" + "---:|" * len(keys))
    for label, wall, t in rows:
        print(f"| {label} | {1000 * wall:.0f} ms | " + " | ".join(f"{1000 * t.get(k, 0.0):.0f} ms" for k in keys) + " |")
    print(f"Machine: {os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
