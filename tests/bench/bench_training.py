"""Training speed: NeuroHSI's lockstep trainer vs. a thesis-style loop, on ~60,000 labelled pixels.

Builds 12 captures' worth of patches with the thesis's label counts (Table 3.1, the
all captures but the smallest, 62,338 pixels), batch 16, lr 1e-3, and reports seconds per epoch and the
projected 100-epoch times for no-cv and double-cv (25 fold models, each trained
on 64 % of the pixels). Patch values are drawn from the class spectra
(resources/spectra/class_spectra.json); their content does not change the cost.

Also times ONE double-cv fold model trained alone (what one Azure ML sweep trial or one
local worker does, ``core.training.trainer.train_fold_model``) and projects the 100-epoch
double cross-validation on 1, 5 and 25 workers: ceil(25 / W) fold models one after
another per worker, plus the selection (node start-up and queueing not included).

Usage: python tests/bench/bench_training.py [--epochs 2] [--thesis-batches 300] [--folds-only]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from core.model.patches import PatchSet
from core.training.trainer import TrainingConfig, train_fold_model, train_patch_set
from resources import CLASS_TABLE_PATH

SPECTRA = CLASS_TABLE_PATH.parent / "spectra" / "class_spectra.json"
FIGURES = CLASS_TABLE_PATH.parent / "spectra" / "thesis_figures.json"


def thesis_patch_set(seed: int = 0) -> PatchSet:
    table = json.loads(FIGURES.read_text())["ground_truth_pixels_table_3_1"]
    captures = [k for k in table if k != "columns"]
    captures.remove(min(captures, key=lambda k: sum(table[k])))  # 12 training captures: all but the smallest
    counts = np.sum([table[k] for k in captures], axis=0)
    spectra = json.loads(SPECTRA.read_text())["classes"]
    rng = np.random.default_rng(seed)
    targets = np.repeat(np.arange(5), counts)
    means = np.array([spectra[k]["mean"] for k in ("healthy", "tumor" if "tumor" in spectra else "tumour",
                                                  "venous_blood", "arterial_blood", "dura_mater")], np.float32)
    noise = rng.normal(scale=0.05, size=(targets.size, 25, 7, 7)).astype(np.float32)
    patches = noise + means[targets][:, :, None, None]
    return PatchSet(patches, targets, np.zeros(targets.size, np.int64), (1, 2, 3, 4, 5), tuple(captures))


def thesis_style_seconds_per_batch(data: PatchSet, batches: int) -> float:
    """Per batch: Python-stacked float64 patches -> tensor, nn.Module + autograd + torch.optim.Adam."""
    from core.model.network import Conv2DNet

    net = Conv2DNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    cube_like = [p.astype(np.float64) for p in data.patches[: 20000]]  # the thesis kept patches as float64 arrays
    order = rng.permutation(len(cube_like))
    start = time.perf_counter()
    for i in range(batches):
        idx = order[(i * 16) % len(order) : (i * 16) % len(order) + 16]
        xb = torch.tensor(np.stack([cube_like[j] for j in idx]), dtype=torch.float32)
        yb = torch.tensor(data.targets[idx])
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()
    return (time.perf_counter() - start) / batches


def neurohsi_seconds_per_epoch(data: PatchSet, cv: str, epochs: int) -> tuple[float, float]:
    """(seconds per epoch, seconds of the final selection/evaluation) of train_patch_set."""
    result = train_patch_set(data, TrainingConfig(epochs=epochs, cross_validation=cv, seed=0))
    return result.timings_s["per_epoch"], result.timings_s["select"]


def fold_model_seconds(data: PatchSet, epochs: int) -> tuple[float, float]:
    """(seconds per epoch, seconds of its validation/test scoring) of one fold model trained alone."""
    config = TrainingConfig(epochs=epochs, cross_validation="double", seed=0)
    start = time.perf_counter()
    train_fold_model(data, config, 0)
    total = time.perf_counter() - start
    # scoring one model on its validation and outer test folds is a small fixed cost: time one epoch more
    start = time.perf_counter()
    train_fold_model(data, TrainingConfig(epochs=epochs + 1, cross_validation="double", seed=0), 0)
    per_epoch = time.perf_counter() - start - total
    return per_epoch, max(0.0, total - epochs * per_epoch)


def print_fold_projection(data: PatchSet, epochs: int, folds: int = 5) -> None:
    per_epoch, fixed = fold_model_seconds(data, epochs)
    model_s = 100 * per_epoch + fixed
    n_models = folds * folds
    print(f"one fold model alone (64 % of the pixels, 1 thread): {per_epoch:.2f} s/epoch, "
          f"{model_s:.0f} s for 100 epochs (+{fixed:.1f} s scoring)")
    print(f"{'workers':>8} {'fold models each':>17} {'double-cv, 100 epochs (s)':>26} {'(min)':>7}")
    for workers in (1, 5, 25):
        rounds = -(-n_models // workers)
        seconds = rounds * model_s
        print(f"{workers:>8} {rounds:>17} {seconds:>26.0f} {seconds / 60:>7.1f}")
    print("(workers = cluster nodes running sweep trials, or `neurohsi train --workers N` threads on N free cores; "
          "Azure ML node start-up and queueing not included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs to time per mode (default 2)")
    parser.add_argument("--thesis-batches", type=int, default=300, help="batches to time the thesis loop (300)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--folds-only", action="store_true", help="only the per-fold-model time and projection")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = thesis_patch_set()
    n = len(data)
    batches = -(-n // 16)
    print(f"labelled pixels: {n} ({batches} batches of 16 per epoch); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    load_before = os.getloadavg()[0]
    if args.folds_only:
        print_fold_projection(data, args.epochs)
        print(f"load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}")
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as NeuroHSI's trainer: torch's 2-thread pool only adds spinning at batch 16
    thesis_batch = thesis_style_seconds_per_batch(data, args.thesis_batches)
    torch.set_num_threads(threads)
    thesis_epoch = thesis_batch * batches
    nocv_epoch, nocv_select = neurohsi_seconds_per_epoch(data, "none", args.epochs)
    dcv_epoch, dcv_select = neurohsi_seconds_per_epoch(data, "double", args.epochs)
    rows = [
        ("thesis-style loop (1 model)", thesis_epoch, 100 * thesis_epoch, 100 * thesis_epoch * 25 * 0.64),
        ("NeuroHSI no-cv (1 model)", nocv_epoch, 100 * nocv_epoch + nocv_select, None),
        ("NeuroHSI double-cv (25 models, 2 workers)", dcv_epoch, None, 100 * dcv_epoch + dcv_select),
    ]
    print(f"{'trainer':<44} {'s/epoch':>9} {'100 ep no-cv (s)':>17} {'double-cv (s)':>14}")
    for name, epoch, nocv, dcv in rows:
        f = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"{name:<44} {epoch:>9.2f} {f(nocv):>17} {f(dcv):>14}")
    print(f"load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} "
          "(wall times grow when other work shares the 2 cores)")
    print("targets (2 CPU cores): no-cv <= 150 s, double-cv <= 1500 s; thesis on a K80 GPU: 820 s and 12,904 s")
    print_fold_projection(data, args.epochs)
    print(f"thesis-style per batch: {thesis_batch * 1e3:.2f} ms; its double-cv projection = 25 separate models "
          "x 64 % of the pixels x 100 epochs; NeuroHSI projections add the final selection/evaluation time")


if __name__ == "__main__":
    main()
