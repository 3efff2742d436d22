"""MLflow logging and reading cost on a local file store (what a local job and the dialog's poll pay).

    PYTHONPATH=. python tests/bench/bench_mlflow_logging.py [--epochs 100] [--folds 5]

Prints: import time of mlflow, seconds per logged epoch (loss + val_oacc, one log_batch),
final metrics logging, and one read_run_metrics of a whole double-cv run (folds^2 models).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.training.trainer import TrainingProgress
from remote import tracking


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow.tracking"], check=True)
    python_only = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    import_s = (python_only - t0) - (time.perf_counter() - python_only)
    rows = [("import mlflow.tracking (fresh process)", import_s)]
    with tempfile.TemporaryDirectory() as tmp:
        uri = tracking.local_store_uri(Path(tmp) / "mlruns")
        run_id = tracking.start_run(uri, params={"epochs": args.epochs, tracking.FOLDS_PARAM: args.folds})
        logger = tracking.MlflowProgress(uri, run_id)
        models = args.folds ** 2
        t = time.perf_counter()
        for fold in range(models):
            for epoch in range(1, args.epochs + 1):
                logger(TrainingProgress("double-cv", fold, epoch, args.epochs, 1.0 / epoch, 0.5, 0.0))
        n = models * args.epochs
        rows.append((f"log one epoch (mean of {n})", (time.perf_counter() - t) / n))
        t = time.perf_counter()
        logger.finish({"oacc": 0.9, "per_class": {str(c): 0.5 for c in range(5)}})
        rows.append(("finish (final metrics + artifact)", time.perf_counter() - t))
        t = time.perf_counter()
        events = tracking.read_run_metrics(uri, run_id)
        rows.append((f"read_run_metrics, {len(events) - 1} epochs of {models} models", time.perf_counter() - t))
        t = time.perf_counter()
        tracking.read_run_metrics(uri, run_id)
        rows.append(("read_run_metrics again (warm)", time.perf_counter() - t))
    print(f"{'step':<48} {'seconds':>10}")
    for name, seconds in rows:
        print(f"{name:<48} {seconds:>10.4f}")


if __name__ == "__main__":
    main()
