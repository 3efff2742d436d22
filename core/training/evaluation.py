"""Leave-one-patient-out evaluation: for each patient, train on all others and test on theirs.

Captures are grouped by :attr:`core.dataset.folders.DatasetCapture.patient` (meta.json's
``patient``, else the ``IDxxxx`` part of the capture id), so two captures of one
patient are never split between training and test. Patches are extracted once for
the whole dataset; each round trains a fresh model (no-cv by default) on the
labelled pixels of the other patients and classifies the held-out patient's
labelled pixels. Reported per held-out patient and overall (the pooled confusion
matrix of all held-out pixels): OACC, per-class sensitivity and specificity,
tumour sensitivity, confusion matrix; per patient also the expected calibration error
(``"calibration"``, :func:`core.training.calibration.calibration_report`: before and after the
model's temperature, which double-cv fits on validation folds; no-cv models are uncalibrated).
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.errors import DatasetError
from core.training.metrics import classification_metrics, format_metrics_table, metrics_from_confusion
from core.training.trainer import (
    TrainingConfig,
    TrainingProgress,
    check_stop,
    class_names_of,
    patch_set_from_captures,
    train_patch_set,
)
from core.training.calibration import calibration_report, patch_logits


def patient_groups(captures) -> dict[str, list[int]]:
    """Patient id -> indices of its captures, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, capture in enumerate(captures):
        groups.setdefault(str(getattr(capture, "patient", capture.capture_id)), []).append(index)
    return groups


def leave_one_patient_out(
    captures,
    config: TrainingConfig = TrainingConfig(),
    *,
    progress: Callable[[str, TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """The JSON-ready report; ``progress(patient, TrainingProgress)`` is called every epoch of every round."""
    start = time.perf_counter()
    groups = patient_groups(captures)
    if len(groups) < 2:
        raise DatasetError(None, f"leave-one-patient-out needs captures of at least 2 patients, got {len(groups)}")
    data, profile_id = patch_set_from_captures(captures, config.patch_size)
    names = class_names_of(data.class_ids)
    prepared = time.perf_counter()
    rounds, total = [], np.zeros((len(data.class_ids),) * 2, dtype=np.int64)
    for patient, members in groups.items():
        check_stop(should_stop)
        held_out = np.isin(data.capture_index, members)
        test_ids = [captures[i].capture_id for i in members]
        if not held_out.any():
            rounds.append({"patient": patient, "capture_ids": test_ids, "skipped": "no labelled pixels"})
            continue
        if held_out.all():
            raise DatasetError(None, f"only patient {patient} has labelled pixels")
        report = None if progress is None else (lambda p, patient=patient: progress(patient, p))
        t0 = time.perf_counter()
        result = train_patch_set(data.subset(np.flatnonzero(~held_out)), config, progress=report,
                                 should_stop=should_stop, class_names=names)
        test = data.subset(np.flatnonzero(held_out))
        logits = patch_logits(result.net, test.patches)
        metrics = classification_metrics(test.targets, logits.argmax(axis=1), data.class_ids, names)
        total += np.asarray(metrics["confusion"], dtype=np.int64)
        rounds.append({"patient": patient, "capture_ids": test_ids, "n_train": len(held_out) - int(held_out.sum()),
                       "metrics": metrics, "calibration": calibration_report(logits, test.targets, result.temperature),
                       "train_s": time.perf_counter() - t0})
    oaccs = [r["metrics"]["oacc"] for r in rounds if "metrics" in r]
    eces = [r["calibration"]["ece"] for r in rounds if "calibration" in r]
    return {
        "method": "leave-one-patient-out",
        "config": config.to_dict(),
        "profile_id": profile_id,
        "class_ids": list(data.class_ids),
        "class_names": list(names),
        "rounds": rounds,
        "overall": metrics_from_confusion(total, data.class_ids, names),
        "oacc_mean": float(np.mean(oaccs)) if oaccs else None,
        "oacc_min": float(np.min(oaccs)) if oaccs else None,
        "oacc_max": float(np.max(oaccs)) if oaccs else None,
        "ece_mean": float(np.mean(eces)) if eces else None,
        "timings_s": {"prepare": prepared - start, "total": time.perf_counter() - start},
    }


def _f(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def format_evaluation_table(report: dict) -> str:
    """Readable table: one row per held-out patient (OACC, tumour sensitivity, per-class sensitivity), then overall."""
    names = report["class_names"]
    short = [n.split()[0][:8] for n in names]
    head = f"{'patient':<10} {'captures':<22} {'n':>6}  {'OACC':>5}  {'tumSe':>5}  " + "  ".join(
        f"Se {s:<8}" for s in short
    )
    lines = [head, "-" * len(head)]
    for r in report["rounds"]:
        ids = ",".join(r["capture_ids"])[:22]
        if "metrics" not in r:
            lines.append(f"{r['patient']:<10} {ids:<22} {'':>6}  ({r['skipped']})")
            continue
        m = r["metrics"]
        lines.append(
            f"{r['patient']:<10} {ids:<22} {m['n']:>6}  {_f(m['oacc']):>5}  {_f(m['tumour_sensitivity']):>5}  "
            + "  ".join(f"{_f(v):<11}" for v in m["sensitivity"])
        )
    lines.append("-" * len(head))
    lines.append(f"OACC over held-out patients: mean {_f(report['oacc_mean'])}, "
                 f"range {_f(report['oacc_min'])} to {_f(report['oacc_max'])}")
    if report.get("ece_mean") is not None:
        lines.append(f"Expected calibration error over held-out patients: mean {_f(report['ece_mean'])}")
    lines.append(format_metrics_table(report["overall"], title="All held-out pixels pooled:"))
    return "\n".join(lines)
