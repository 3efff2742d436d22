"""Slow work off the GUI thread: open a capture, classify it locally or remotely.

Each job is a generator (napari/superqt ``thread_worker`` style): it yields
:class:`Progress` (and :class:`FallbackNotice` when the endpoint failed and the
map was made locally instead) and returns its result. The steps are the shared
pipeline (:mod:`core.model.inference`) and remote-or-local call
(:mod:`remote.remote_or_local`); nothing here re-implements them. Yield points are where
a job can be cancelled. :func:`app.job_runner.run_job` runs every job in Qt's thread
pool; nothing here blocks or sleeps in the GUI thread.
"""
from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from core.audit.events import classification_details, record
from core.model.inference import ClassificationResult, Prepared, prepare_files
from core.model.files import LoadedModel
from remote.remote_or_local import RemotePolicy, RemoteTarget, classify_remote_or_local

OpenedCapture = Prepared  # what the main window holds: the capture prepared for display and classification
__all__ = ["Classified", "FallbackNotice", "OpenedCapture", "Progress", "RemoteTarget", "classify_job",
           "open_capture_job"]


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    text: str


@dataclass(frozen=True)
class FallbackNotice:
    """The endpoint failed; the map was made locally instead."""

    endpoint: str
    problem: str


@dataclass(frozen=True)
class Classified:
    result: ClassificationResult
    fallback: FallbackNotice | None = None


def open_capture_job(
    raw_path: str | Path,
    dark_path: str | Path | None = None,
    white_path: str | Path | None = None,
    *,
    profile_name: str | None = None,
) -> Generator[Progress, None, Prepared]:
    """Read the triplet (references by name unless given) and prepare it: :func:`core.model.inference.prepare_files`."""
    yield Progress(0.0, f"Opening {Path(raw_path).name}")
    prepared = prepare_files(raw_path, dark_path, white_path, profile_name=profile_name)
    record("capture_opened", capture=prepared.capture.capture_id, path=str(raw_path),
           quality=None if prepared.quality is None else prepared.quality.status)
    return prepared


def classify_job(
    opened: Prepared,
    *,
    model_resolver: Callable[[], LoadedModel] | LoadedModel,
    remote: RemoteTarget | None = None,
    fallback_local: bool = True,
    policy: RemotePolicy = RemotePolicy(),
) -> Generator[Progress | FallbackNotice, None, Classified]:
    """Classify through :func:`remote.remote_or_local.classify_remote_or_local` (its one policy).

    ``model_resolver`` (e.g. ``lambda: core.model.choice.resolve_model(...)``) runs in
    this worker thread, and only when classifying locally.
    """
    yield Progress(0.1, f"Sending to {remote.url}" if remote is not None else "Classifying locally")
    outcome = classify_remote_or_local(
        opened, model_resolver=model_resolver, endpoint=remote, fallback_local=fallback_local, policy=policy
    )
    fallback = None
    if outcome.fallback_reason is not None:
        fallback = FallbackNotice(remote.url, outcome.fallback_reason)
        yield fallback
    record("classified", **classification_details(outcome.result, capture=opened.capture.capture_id),
           fallback=None if fallback is None else fallback.problem)
    return Classified(outcome.result, fallback)
