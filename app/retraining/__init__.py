"""The retraining dialog (``app.retraining.dialog.RetrainingDialog``) and its Qt-free parts.

Imported here: the state (:mod:`.state`) and the generator jobs (:mod:`.runner`),
which need no Qt; the widgets live in :mod:`.dialog`, :mod:`.dataset_table`,
:mod:`.training_form` and :mod:`.job_panel`.
"""
from app.retraining.run_snapshot import RunSnapshot
from app.retraining.runner import Environment, TrainingRun, default_environment, run_checks
from app.retraining.state import (
    CaptureRow, Check, RetrainingState, flat_metrics, scan_dataset,
)

__all__ = [
    "CaptureRow", "Check", "Environment", "RetrainingState", "RunSnapshot", "TrainingRun",
    "default_environment", "flat_metrics", "run_checks", "scan_dataset",
]
