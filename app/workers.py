"""Slow work off the GUI thread: open a capture, classify it locally or remotely.

Each job is a generator (napari/superqt ``thread_worker`` style): it yields
:class:`Progress` (and :class:`FallbackNotice` when the endpoint failed and the
job classifies locally instead) and returns its result. Yield points are where
a job can be cancelled. :func:`start_job` runs a job in Qt's thread pool and
routes errors to one handler; nothing here blocks or sleeps in the GUI thread.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from superqt.utils import GeneratorWorker, create_worker

from core.capture_io import Capture, load_capture
from core.preprocessing import Cube, preprocess_capture
from core.rgb import synthetic_rgb


REMOTE_RETRIES = 1
REMOTE_TIMEOUT_S = (3.0, 60.0)  # (connect, read)


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    text: str


@dataclass(frozen=True)
class FallbackNotice:
    """The endpoint failed; the job goes on locally."""

    endpoint: str
    problem: str


@dataclass(frozen=True)
class OpenedCapture:
    """A capture ready to show and classify."""

    capture: Capture
    cube: Cube  # float32 (H, W, B) normalised, with validity mask
    rgb: np.ndarray  # uint8 (H, W, 3) synthetic RGB
    timings_s: dict[str, float]  # "read", "preprocess", "rgb"


@dataclass(frozen=True)
class RemoteTarget:
    url: str
    key: str | None = None


@dataclass(frozen=True)
class Classified:
    result: object  # core.inference.ClassificationResult
    fallback: FallbackNotice | None = None


def open_capture_job(
    raw_path: str | Path,
    dark_path: str | Path | None = None,
    white_path: str | Path | None = None,
    *,
    profile_name: str | None = None,
) -> Generator[Progress, None, OpenedCapture]:
    """Read the triplet (references by name unless given), preprocess, build the synthetic RGB."""
    t0 = time.perf_counter()
    yield Progress(0.0, f"Reading {Path(raw_path).name}")
    capture = load_capture(raw_path, dark_path, white_path)
    t1 = time.perf_counter()
    yield Progress(0.4, "Preprocessing")
    cube = preprocess_capture(capture, profile_name=profile_name)
    t2 = time.perf_counter()
    yield Progress(0.8, "Rendering")
    rgb = synthetic_rgb(cube)
    t3 = time.perf_counter()
    return OpenedCapture(capture, cube, rgb, {"read": t1 - t0, "preprocess": t2 - t1, "rgb": t3 - t2})


_model_cache: dict[tuple, object] = {}
_model_lock = threading.Lock()


def load_model_cached(path: str | Path):
    """``core.model_file.load_model`` once per file version (path, size, mtime)."""
    from core.errors import ModelFileError
    from core.model_file import load_model

    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ModelFileError(path, "model file not found") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _model_lock:
        if key not in _model_cache:
            _model_cache.clear()  # one model at a time is all the app uses
            _model_cache[key] = load_model(path)
        return _model_cache[key]


def classify_local(opened: OpenedCapture, model) -> object:
    """Classify the already preprocessed cube (no second read or preprocessing)."""
    from core.inference import ClassificationResult, predict_dense
    from core.model_file import check_compatible

    t0 = time.perf_counter()
    check_compatible(model.info, opened.cube, path=model.path)
    probs, labels = predict_dense(
        model.net, opened.cube, padding=model.info.padding, class_ids=model.info.class_ids
    )
    infer = time.perf_counter() - t0
    timings = {**opened.timings_s, "infer": infer}
    timings["total"] = sum(timings.values())
    return ClassificationResult(labels, probs, opened.rgb, model.info, timings, opened.cube, "local")


def classify_job(
    opened: OpenedCapture,
    *,
    model_path: str | Path | None,
    remote: RemoteTarget | None = None,
    fallback_local: bool = True,
) -> Generator[Progress | FallbackNotice, None, Classified]:
    """Classify remotely when ``remote`` is given (falling back to local on failure), else locally."""
    fallback = None
    if remote is not None:
        from remote.scoring_client import RemoteError, ScoringClient

        yield Progress(0.1, f"Sending to {remote.url}")
        try:
            # One retry only: in theatre a quick local fallback beats a long wait on a dead endpoint.
            with ScoringClient(remote.url, key=remote.key, retries=REMOTE_RETRIES, timeout=REMOTE_TIMEOUT_S) as client:
                result = client.classify_capture(opened.capture)
            return Classified(result)
        except (RemoteError, OSError) as exc:
            if not fallback_local:
                raise
            from core.errors import one_line

            fallback = FallbackNotice(remote.url, one_line(exc))
            yield fallback
    if model_path is None:
        from core.errors import ModelFileError
        from resources import DEMO_MODEL_PATH

        raise ModelFileError(DEMO_MODEL_PATH, "no model configured and the demo model is missing (make demo-model)")
    yield Progress(0.3, f"Loading model {Path(model_path).name}")
    model = load_model_cached(model_path)
    yield Progress(0.5, "Classifying locally")
    return Classified(classify_local(opened, model), fallback)


def start_job(
    job: Callable,
    *args,
    on_yield: Callable[[object], None],
    on_return: Callable[[object], None],
    on_error: Callable[[BaseException], None],
    on_finish: Callable[[], None] | None = None,
    **kwargs,
) -> GeneratorWorker:
    """Run generator ``job(*args, **kwargs)`` in the thread pool; results come back as Qt signals."""
    worker = create_worker(job, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.yielded.connect(on_yield)
    worker.returned.connect(on_return)
    worker.errored.connect(on_error)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.start()
    return worker
