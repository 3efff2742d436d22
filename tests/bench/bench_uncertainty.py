"""Does the uncertainty flag point at wrong pixels? Real NEMESIS patients, leave one patient out.

For each held-out patient: five members of a per-pixel network (25 bands -> 64 -> 64 -> C,
no spatial context, because only labelled spectra are public) are trained on the other
patients' pixels, member k on all but fold k of a class-stratified 5-fold split, and its
temperature fitted on fold k (:func:`core.training.calibration.fit_temperature`). The
single model is member 0. On the held-out patient it reports: error rate, ECE before and
after temperature scaling, and for each uncertainty measure and threshold the share of
pixels flagged and the error rate of flagged vs unflagged pixels (the product's rule: the
flag is shown by default only if flagged pixels are at least twice as often wrong).

``--cost`` instead times the product's dense classification of one full thesis cube
(217 x 409 x 25) with the single Conv2DNet and with an ensemble of 5 (no training).

Usage: python tests/bench/bench_uncertainty.py [--data ../shared/data/nemesis-public] [--epochs 40] [--cost]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.model.uncertainty import disagreement, predictive_entropy
from core.training.calibration import ece, fit_temperature, softmax

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MEMBERS = 5


def load_patients(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from scipy.io import loadmat

    out = {}
    for path in sorted(folder.glob("*_dataset.mat")):
        mat = loadmat(path)
        patient = path.name.split("C")[0]
        out[patient] = (mat["data"].astype(np.float32), mat["label4Classes"].ravel().astype(np.int64) - 1)
    return out


def train_member(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int, epochs: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, n_classes))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 64)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[batch]), yt[batch]).backward()
            opt.step()
    return net.eval()


def logits_of(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy().astype(np.float64)


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    fold = np.empty(len(y), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        fold[rows] = np.arange(len(rows)) % k
    return fold


def flag_counts(u: np.ndarray, wrong: np.ndarray) -> dict[float, np.ndarray]:
    """Threshold -> [flagged, flagged wrong, unflagged, unflagged wrong] pixel counts."""
    out = {}
    for t in THRESHOLDS:
        flagged = u > t
        out[t] = np.array([flagged.sum(), (wrong & flagged).sum(), (~flagged).sum(), (wrong & ~flagged).sum()])
    return out


def _rates(c: np.ndarray) -> tuple[float, float, float, float]:
    share = c[0] / max(c[0] + c[2], 1)
    e_f = c[1] / c[0] if c[0] else float("nan")
    e_u = c[3] / c[2] if c[2] else float("nan")
    return share, e_f, e_u, (e_f / e_u if c[0] and e_u > 0 else float("nan"))


def run_lopo(patients, epochs: int, seed: int) -> dict:
    """One leave-one-patient-out pass; returns {(patient, measure): flag_counts}."""
    n_classes = 5
    all_rows = {}
    print(f"seed {seed}")
    print(f"{'patient':<8} {'n':>5} {'err single':>10} {'err ens':>8} {'T single':>8} {'ECE raw':>8} {'ECE T':>7} "
          f"{'ECE ens':>8}")
    for held in patients:
        x_tr = np.concatenate([patients[p][0] for p in patients if p != held])
        y_tr = np.concatenate([patients[p][1] for p in patients if p != held])
        x_te, y_te = patients[held]
        folds = stratified_folds(y_tr, MEMBERS, seed=seed + 1)
        probs, temps, raw0 = [], [], None
        for k in range(MEMBERS):
            net = train_member(x_tr[folds != k], y_tr[folds != k], n_classes, seed=100 * seed + k, epochs=epochs)
            t = fit_temperature(logits_of(net, x_tr[folds == k]), y_tr[folds == k])
            test_logits = logits_of(net, x_te)
            raw0 = test_logits if k == 0 else raw0
            temps.append(t)
            probs.append(softmax(test_logits, t))
        member_probs = np.stack(probs)
        mean = member_probs.mean(axis=0)
        wrong_single = probs[0].argmax(1) != y_te
        wrong_ens = mean.argmax(1) != y_te
        print(f"{held:<8} {len(y_te):>5} {wrong_single.mean():>10.3f} {wrong_ens.mean():>8.3f} {temps[0]:>8.2f} "
              f"{ece(softmax(raw0), y_te):>8.3f} {ece(probs[0], y_te):>7.3f} {ece(mean, y_te):>8.3f}")
        all_rows[(held, "single entropy")] = flag_counts(predictive_entropy(probs[0]), wrong_single)
        all_rows[(held, "ensemble entropy")] = flag_counts(predictive_entropy(mean), wrong_ens)
        # mutual information is small on these data: its own, lower thresholds
        all_rows[(held, "ensemble MI x5")] = flag_counts(np.clip(5 * disagreement(member_probs), 0, 1), wrong_ens)
    print()
    return all_rows


def print_flags(runs: list[dict]) -> None:
    """Per patient and pooled over patients and seeds: flagged share, error flagged / unflagged, their ratio."""
    keys = sorted({k for run in runs for k in run}, key=lambda k: (k[1], k[0]))
    print(f"{'patient':<8} {'measure':<18} {'thr':>4} {'flagged':>8} {'err flagged':>11} {'err unflagged':>13} "
          f"{'ratio':>6}   (summed over {len(runs)} seed(s))")
    for measure in dict.fromkeys(k[1] for k in keys):
        patients = [k[0] for k in keys if k[1] == measure]
        for t in THRESHOLDS:
            for patient in patients + ["pooled"]:
                group = patients if patient == "pooled" else [patient]
                c = sum(run[(p, measure)][t] for run in runs for p in group)
                share, e_f, e_u, ratio = _rates(c)
                print(f"{patient:<8} {measure:<18} {t:>4.1f} {share:>8.3f} {e_f:>11.3f} {e_u:>13.3f} {ratio:>6.2f}")


def run_cost(repeats: int) -> None:
    from core.model.ensemble import ensemble_of
    from core.model.files import LoadedModel, ModelInfo
    from core.model.inference import Prepared, classify_prepared
    from core.model.network import Conv2DNet
    from core.spectral.chain import Cube

    rng = np.random.default_rng(0)
    h, w, b = 217, 409, 25
    cube = Cube(rng.random((h, w, b), dtype=np.float32) + 0.5, np.ones((h, w), bool), None, "bench")
    prepared = Prepared(capture=None, cube=cube, rgb=np.zeros((h, w, 3), np.uint8), timings_s={})
    torch.manual_seed(0)
    nets = [Conv2DNet(b, 5, 7).eval() for _ in range(MEMBERS)]
    info = ModelInfo("bench", "1", "0" * 64, 1, "Conv2DNet", 7, b, "reflect", (1, 2, 3, 4, 5),
                     ("a", "b", "c", "d", "e"), "bench", "2026-01-01T00:00:00Z")
    single = LoadedModel(nets[0], info)
    ensemble = ensemble_of(single, nets, [1.0] * MEMBERS)
    print(f"{'model':<14} {'median ms':>9} {'min ms':>7}  (full cube {h}x{w}x{b}, {repeats} runs, torch threads "
          f"{torch.get_num_threads()})")
    for name, model in (("single", single), (f"ensemble x{MEMBERS}", ensemble)):
        classify_prepared(prepared, model)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            classify_prepared(prepared, model)
            times.append(1000 * (time.perf_counter() - start))
        print(f"{name:<14} {np.median(times):>9.1f} {np.min(times):>7.1f}")
    from core.model.uncertainty import uncertain_mask

    probs = rng.dirichlet(np.ones(5), size=(h, w)).astype(np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        uncertain_mask(probs, 0.5, cube.valid)
        times.append(1000 * (time.perf_counter() - start))
    print(f"{'flag (entropy)':<14} {np.median(times):>9.1f} {np.min(times):>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/nemesis-public")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=2, help="repeat the whole run with this many seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.cost:
        torch.set_num_threads(2)
        run_cost(args.repeats)
        return
    start = time.perf_counter()
    patients = load_patients(args.data)
    print_flags([run_lopo(patients, args.epochs, seed) for seed in range(args.seeds)])
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
