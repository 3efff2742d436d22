"""Real-data benchmark: leave-one-patient-out on the three public NEMESIS patients, every model kind.

Run: ``PYTHONPATH=$PWD .venv/bin/python tests/bench/bench_real_data.py [--epochs N] [--seeds N] [--out FILE.json]``.
Imports ``../shared/data/nemesis-public`` (``<ID>_dataset.mat`` spectra, positions
recovered from ``SNAPgt...`` maps) with ``neurohsi import-nemesis``'s code into a
temporary dataset, then runs :func:`core.training.evaluation.leave_one_patient_out`
for each configuration, with the linear SVM and majority baselines on the same folds.

The recommended model is chosen by nested validation: in every outer fold, the
configuration whose inner leave-one-patient-out (over that fold's two training
patients) scored the best mean macro F1 is the one tested on the held-out patient;
the test patient never takes part in the choice. Prints a table and writes the
full reports as JSON (``--out``). The real files are read, never copied into the product.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent.parent / "shared" / "data" / "nemesis-public"

# (label, model kind, balance, batch size). SpectralNet trains on batches of 64: its step is
# all per-op overhead, so batch 16 would cost 4x the time for the same epochs.
CONFIGS = [
    ("spectral", "spectral", "none", 64),
    ("spectral+sampling", "spectral", "sampling", 64),
    ("spectral+loss", "spectral", "loss", 64),
    ("conv2dnet", "conv2dnet", "none", 16),
    ("conv2dnet+sampling", "conv2dnet", "sampling", 16),
]


def _data_folder() -> Path:
    for candidate in (DATA, Path("/work/shared/data/nemesis-public")):
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"real NEMESIS data not found at {DATA}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--conv-seeds", type=int, default=1, help="seeds for Conv2DNet rows (slower)")
    parser.add_argument("--only", default=None, help="comma-separated config labels to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from app.cli.baselines import BASELINES
    from core.dataset.folders import read_dataset
    from core.dataset.nemesis_import import import_nemesis
    from core.training.config import TrainingConfig
    from core.training.evaluation import leave_one_patient_out

    reports, timings = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        import_nemesis(_data_folder(), Path(tmp) / "ds")
        captures = read_dataset(Path(tmp) / "ds")
        only = None if args.only is None else set(args.only.split(","))
        for label, kind, balance, batch in CONFIGS:
            if only is not None and label not in only:
                continue
            config = TrainingConfig(epochs=args.epochs, batch_size=batch, model_kind=kind, balance=balance)
            seeds = args.conv_seeds if kind == "conv2dnet" else args.seeds
            start = time.perf_counter()
            reports[label] = leave_one_patient_out(captures, config, seeds=seeds,
                                                   baselines=BASELINES if not reports else None)
            timings[label] = time.perf_counter() - start
            print(f"{label}: {timings[label]:.0f} s", file=sys.stderr, flush=True)
            if args.out is not None:  # after every configuration: a long run keeps what it finished
                args.out.write_text(json.dumps({"reports": reports, "timings_s": timings, "machine": _machine()}))
    print(format_table(reports, timings))
    return 0


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''}, Python {platform.python_version()}".strip()


def nested_choice(reports: dict) -> list[dict]:
    """Per outer fold and seed 0: the configuration with the best inner score, and its test figures."""
    rows = []
    labels = list(reports)
    for i, fold in enumerate(reports[labels[0]]["folds"]):
        inner = {label: reports[label]["folds"][i]["seeds"][0]["chosen"]["inner_best"] for label in labels}
        best = max(labels, key=lambda label: inner[label])
        test = reports[best]["folds"][i]["seeds"][0]
        rows.append({"patient": fold["patient"], "chosen": best, "inner": inner, "oacc": test["oacc"],
                     "macro_f1": test["macro_f1"], "tumour_recall": test["tumour_recall"]})
    return rows


def format_table(reports: dict, timings: dict) -> str:
    def f(v, s=None):
        return "  -  " if v is None else (f"{v:.3f}" if not s else f"{v:.3f}±{s:.3f}")

    lines = ["| model | seeds | mean OACC | mean macro F1 | mean tumour recall | per-fold macro F1 | per-fold tumour recall | s |",
             "|---|---|---|---|---|---|---|---|"]
    for label, report in reports.items():
        m, s = report["mean"], report["mean"]["std_over_seeds"]
        folds = report["folds"]
        lines.append(f"| {label} | {len(report['model']['seeds'])} | {f(m['oacc'], s['oacc'])} | "
                     f"{f(m['macro_f1'], s['macro_f1'])} | {f(m['tumour_recall'], s['tumour_recall'])} | "
                     + " / ".join(f(x["macro_f1"]) for x in folds) + " | "
                     + " / ".join(f(x["tumour_recall"]) for x in folds) + f" | {timings[label]:.0f} |")
    first = next(iter(reports.values()))
    for name, base in first["baselines"].items():
        m = base["mean"]
        lines.append(f"| baseline {name} | - | {f(m['oacc'])} | {f(m['macro_f1'])} | {f(m['tumour_recall'])} | "
                     + " / ".join(f(x["macro_f1"]) for x in base["folds"]) + " | "
                     + " / ".join(f(x["tumour_recall"]) for x in base["folds"]) + " | - |")
    if len(reports) > 1:
        lines.append("")
        lines.append("Nested choice (per outer fold, best inner macro F1 over the fold's training patients, seed 0):")
        for row in nested_choice(reports):
            inner = ", ".join(f"{k} {v:.3f}" for k, v in row["inner"].items())
            lines.append(f"- {row['patient']}: chose {row['chosen']} (inner: {inner}) -> test OACC {f(row['oacc'])}, "
                         f"macro F1 {f(row['macro_f1'])}, tumour recall {f(row['tumour_recall'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
