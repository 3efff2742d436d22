"""The leave-one-patient-out report: per-fold scores, means, baselines, and its readable table.

JSON (``neurohsi evaluate --json``)::

    {"model": {kind, architecture, inputs, class_ids, class_names, profile_id, config, seeds, ...},
     "folds": [{"patient", "capture_ids", "n", "oacc", "macro_f1",
                "per_class": {name: {"recall", "precision", "f1", "n"}},
                "confusion": [[...]],            # rows true, columns predicted; summed over seeds
                "std": {"oacc", "macro_f1", "tumour_recall"},   # over seeds
                "seeds": [{"seed", "oacc", "macro_f1", "tumour_recall", "chosen": {...}}], ...}],
     "mean": {"oacc", "macro_f1", "tumour_recall", "recall": {name: f}, "std_over_seeds": {...},
              "std_over_folds": {...}, "aim": {...}},
     "baselines": {"majority": {"folds": [...], "mean": {...}}, "linear_svm": {...}}}

Fold figures are means over seeds; ``mean`` averages folds (each patient counts once).
:func:`evaluation_json` is the one place the report is assembled: ``extra_fold_fields``
(patient -> fields) adds per-fold figures computed elsewhere (calibration, uncertainty).
"""
from __future__ import annotations

import numpy as np

from core.training.metrics import TUMOUR_ID, per_class_scores

AIM_MACRO_F1 = 0.45
AIM_TUMOUR_RECALL = 0.40
AIM_MIN_TUMOUR_PIXELS = 100


def _tumour_name(names) -> str | None:
    from core.classes import class_table

    table = class_table()
    name = table.by_id(TUMOUR_ID).name if TUMOUR_ID in table.ids else None
    return name if name in names else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _std(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.std(values)) if values else None


def score_fold(patient: str, capture_ids, runs, names, *, train_s: float | None = None) -> dict:
    """One fold's entry from ``runs``: ``[(seed, confusion (C, C), chosen dict or None), ...]``."""
    tumour = _tumour_name(names)
    seeds, matrices = [], []
    for seed, matrix, chosen in runs:
        per_class, macro = per_class_scores(matrix, names)
        total = int(np.sum(matrix))
        entry = {"seed": int(seed), "oacc": float(np.trace(matrix)) / total if total else None, "macro_f1": macro,
                 "tumour_recall": None if tumour is None else per_class[tumour]["recall"], "per_class": per_class}
        if chosen is not None:
            entry["chosen"] = chosen
        seeds.append(entry)
        matrices.append(np.asarray(matrix, dtype=np.int64))
    per_class = {
        name: {key: _mean(s["per_class"][name][key] for s in seeds) for key in ("recall", "precision", "f1")}
        | {"n": seeds[0]["per_class"][name]["n"]}
        for name in names
    }
    for s in seeds:
        s.pop("per_class")  # per seed the headline figures suffice; per_class is the mean over seeds
    fold = {
        "patient": patient,
        "capture_ids": list(capture_ids),
        "n": int(matrices[0].sum()),
        "oacc": _mean(s["oacc"] for s in seeds),
        "macro_f1": _mean(s["macro_f1"] for s in seeds),
        "tumour_recall": _mean(s["tumour_recall"] for s in seeds),
        "per_class": per_class,
        "confusion": np.sum(matrices, axis=0).tolist(),
        "std": {k: _std(s[k] for s in seeds) for k in ("oacc", "macro_f1", "tumour_recall")},
        "seeds": seeds,
    }
    if train_s is not None:
        fold["train_s"] = round(train_s, 3)
    return fold


def summarise_folds(folds: list[dict], names) -> dict:
    """The ``mean`` entry: averages over scored folds, spreads over seeds and folds, and the issue's aim."""
    scored = [f for f in folds if f.get("oacc") is not None]
    if not scored:
        return {"oacc": None, "macro_f1": None, "tumour_recall": None}
    tumour = _tumour_name(names)
    n_seeds = min(len(f["seeds"]) for f in scored)
    per_seed = {k: [_mean(f["seeds"][i][k] for f in scored) for i in range(n_seeds)]
                for k in ("oacc", "macro_f1", "tumour_recall")}
    checked = [f for f in scored if tumour and f["per_class"][tumour]["n"] >= AIM_MIN_TUMOUR_PIXELS]
    macro = _mean(f["macro_f1"] for f in scored)
    return {
        "oacc": _mean(f["oacc"] for f in scored),
        "macro_f1": macro,
        "tumour_recall": _mean(f["tumour_recall"] for f in scored),
        "recall": {name: _mean(f["per_class"][name]["recall"] for f in scored) for name in names},
        "oacc_range": [min(f["oacc"] for f in scored), max(f["oacc"] for f in scored)],
        "std_over_seeds": {k: _std(v) for k, v in per_seed.items()},
        "std_over_folds": {k: _std(f[k] for f in scored) for k in ("oacc", "macro_f1", "tumour_recall")},
        "aim": {
            "macro_f1_at_least": AIM_MACRO_F1,
            "macro_f1_met": macro is not None and macro >= AIM_MACRO_F1,
            "tumour_recall_at_least": AIM_TUMOUR_RECALL,
            "on_folds_with_tumour_pixels_at_least": AIM_MIN_TUMOUR_PIXELS,
            "folds_checked": [f["patient"] for f in checked],
            "tumour_recall_met": bool(checked) and all(
                (f["tumour_recall"] or 0.0) >= AIM_TUMOUR_RECALL for f in checked),
        },
    }


def evaluation_json(model: dict, folds: list[dict], baselines: dict[str, list[dict]] | None = None, *,
                    extra_fold_fields: dict[str, dict] | None = None) -> dict:
    """The report: ``{"model", "folds", "mean", "baselines"}``; ``extra_fold_fields[patient]`` is merged into its fold."""
    extra = extra_fold_fields or {}
    folds = [{**f, **extra.get(f["patient"], {})} for f in folds]
    names = model["class_names"]
    return {
        "model": model,
        "folds": folds,
        "mean": summarise_folds(folds, names),
        "baselines": {name: {"folds": bf, "mean": summarise_folds(bf, names)} for name, bf in (baselines or {}).items()},
    }


def _f(value, std=None) -> str:
    if value is None:
        return "  -  "
    return f"{value:.3f}" if not std else f"{value:.3f}±{std:.3f}"


def _beats(report: dict) -> list[str]:
    """Plain sentences: which mean figures beat each baseline, and which do not."""
    lines = []
    mean = report["mean"]
    for name, base in report["baselines"].items():
        wins, losses = [], []
        for key, label in (("oacc", "mean OACC"), ("macro_f1", "mean macro F1"), ("tumour_recall", "mean tumour recall")):
            ours, theirs = mean.get(key), base["mean"].get(key)
            if ours is None or theirs is None:
                continue
            (wins if ours > theirs else losses).append(f"{label} {ours:.3f} vs {theirs:.3f}")
        per_fold = [f["patient"] for f, b in zip(report["folds"], base["folds"])
                    if f.get("macro_f1") is not None and b.get("macro_f1") is not None and f["macro_f1"] > b["macro_f1"]]
        lines.append(f"vs {name}: beats it on {', '.join(wins) or 'nothing'}"
                     + (f"; does NOT beat it on {', '.join(losses)}" if losses else "")
                     + f"; macro F1 higher on folds: {', '.join(per_fold) or 'none'}")
    return lines


def format_evaluation_table(report: dict) -> str:
    """Readable table: one row per held-out patient, the mean, the baselines, and what beats them."""
    model, mean = report["model"], report["mean"]
    tumour = _tumour_name(model["class_names"])
    lines = [f"Leave-one-patient-out, {model['kind']} ({model['architecture']}, {model['inputs']}), "
             f"seeds {model['seeds']}; epochs: {model['epoch_selection']}"]
    head = f"{'patient':<10} {'n':>6} {'tumour n':>8}  {'OACC':>11}  {'macro F1':>11}  {'tumour recall':>13}  epochs"
    lines += [head, "-" * len(head)]
    for f in report["folds"]:
        if f.get("oacc") is None:
            lines.append(f"{f['patient']:<10} ({f.get('skipped', 'not scored')})")
            continue
        epochs = ",".join(str(s.get("chosen", {}).get("epochs", "-")) for s in f["seeds"])
        n_tumour = f["per_class"][tumour]["n"] if tumour else 0
        lines.append(f"{f['patient']:<10} {f['n']:>6} {n_tumour:>8}  {_f(f['oacc'], f['std']['oacc']):>11}  "
                     f"{_f(f['macro_f1'], f['std']['macro_f1']):>11}  "
                     f"{_f(f['tumour_recall'], f['std']['tumour_recall']):>13}  {epochs}")
    lines.append("-" * len(head))
    if mean.get("oacc") is not None:
        seeds = mean["std_over_seeds"]
        lines.append(f"{'mean':<10} {'':>6} {'':>8}  {_f(mean['oacc'], seeds['oacc']):>11}  "
                     f"{_f(mean['macro_f1'], seeds['macro_f1']):>11}  "
                     f"{_f(mean['tumour_recall'], seeds['tumour_recall']):>13}   (± = std over seeds)")
        aim = mean["aim"]
        lines.append(f"aim: mean macro F1 >= {aim['macro_f1_at_least']}: {'met' if aim['macro_f1_met'] else 'NOT met'}; "
                     f"tumour recall >= {aim['tumour_recall_at_least']} on folds with >= "
                     f"{aim['on_folds_with_tumour_pixels_at_least']} tumour pixels ({', '.join(aim['folds_checked']) or 'none'}): "
                     f"{'met' if aim['tumour_recall_met'] else 'NOT met'}")
    if mean.get("ece") is not None:
        lines.append(f"expected calibration error over held-out patients: mean {_f(mean['ece'])}")
    for name, base in report["baselines"].items():
        m = base["mean"]
        lines.append(f"baseline {name:<11} mean OACC {_f(m.get('oacc'))}, macro F1 {_f(m.get('macro_f1'))}, "
                     f"tumour recall {_f(m.get('tumour_recall'))}")
    lines += _beats(report)
    return "\n".join(lines)
