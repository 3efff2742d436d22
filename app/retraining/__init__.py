"""Helpers of the retraining dialog: its state (no Qt) and the worker-thread training run."""
from app.retraining.runner import Environment, RunSnapshot, TrainingRun, default_environment, run_checks
from app.retraining.state import CaptureRow, Check, HyperParameters, RetrainingState, install_model, scan_dataset

__all__ = [
    "CaptureRow", "Check", "Environment", "HyperParameters", "RetrainingState", "RunSnapshot", "TrainingRun",
    "default_environment", "install_model", "run_checks", "scan_dataset",
]
