"""Training backends: one interface (:class:`TrainingBackend`) for local and Azure ML training.

``AzureMLBackend`` lives in :mod:`remote.training_backends.azureml` and imports
azure-ai-ml lazily, so importing this package stays light.
"""
from remote.training_backends.base import (
    TERMINAL,
    JobError,
    JobInfo,
    JobSpec,
    JobStatus,
    TrainingBackend,
)
from remote.training_backends.local import LocalBackend

__all__ = ["TERMINAL", "JobError", "JobInfo", "JobSpec", "JobStatus", "LocalBackend", "TrainingBackend"]
