"""Live mode: every new capture from a :class:`core.capture.source.CaptureSource` classified, newest first.

Threads (no Qt; the consumer gets plain callbacks, on these threads):

- the *reader* polls the source every ``poll_s`` (the source reads each complete frame)
  and, with one classifier, prepares the newest capture
  (:func:`core.model.inference.prepare`: preprocessing, synthetic RGB, quality);
- one or more *classifiers* take the newest prepared capture and run ``classify``
  (local, or :func:`remote.remote_or_local.classify_remote_or_local` given by the app).
  A local classifier asks for one per usable core, up to two (``classify.workers``):
  one map takes ~50 ms of one core, so at 20 captures/s one classifier cannot keep up
  while two, each on one torch thread, can (docs/benchmarks/live.md). With several,
  each classifier prepares the capture it takes: under overload the reader then wastes
  no preparation on captures dropped from the mailbox.

Between them is a mailbox with one place per classifier: when it is full, the
oldest waiting capture is dropped and counted as skipped, so the map shown is
never more than a capture or two behind the newest and memory is bounded (one
frame being read, one waiting and one being classified per classifier; the
references are shared). With two classifiers the second place absorbs two
captures arriving while both are busy (the polling interval bunches arrivals):
at 20 captures/s on two cores a single place dropped 1-2 % of them
(docs/benchmarks/live.md).

Maps are handed on in capture order, never an older map after a newer one. A map
finished while an older capture is still being classified waits for it, up to
``hold_s`` (:data:`HOLD_FOR_OLDER_S`): two maps of similar cost started 50 ms apart
rarely finish out of order, and then by a few ms, so the older map is shown
rather than wasted. An older map finished after a newer one was handed on (it took
longer than the hold) is dropped and counted as skipped.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from core.capture.source import CaptureSource, NewCapture, ReferencesChanged, Skipped, SourceEvent, SourceProblem
from core.cpu import usable_cores
from core.errors import one_line
from core.model.inference import ClassificationResult, Prepared, classify_prepared, prepare, warm_up
from core.model.files import LoadedModel
from core.spectral.chain import CalibrationCache

# Torch intra-op threads for live inference: the reader prepares the next capture on
# the other core meanwhile. With 2 threads on 2 cores the spinning helpers cost
# 2.4x the CPU per map for no faster map (docs/benchmarks/live.md).
LIVE_INFERENCE_THREADS = 1

# Classifier threads a local classifier asks for (capped by the usable cores): two keep
# both cores of the target station busy; more would only contend for them.
LIVE_CLASSIFIERS = 2

# How long a finished map waits for an older capture still being classified before it is handed
# on anyway (s). Local maps of similar cost finish out of order by a few ms; a remote call stuck
# until its deadline must not hold the newer maps behind it for long.
HOLD_FOR_OLDER_S = 0.25

# What ``classify`` returns: the map and, when it was made locally after the endpoint failed, why.
# A ``classify`` may carry an int attribute ``workers``: how many captures it may classify at
# once (it must then be thread-safe); without it, one at a time.
Classify = Callable[[Prepared], "tuple[ClassificationResult, str | None]"]


@dataclass(frozen=True)
class LiveResult:
    """One classified live capture."""

    prepared: Prepared
    result: ClassificationResult
    fallback_reason: str | None
    complete_at: float  # perf_counter when the file was found complete
    done_at: float  # perf_counter when the map was ready
    skipped_total: int  # captures skipped so far this session

    @property
    def latency_s(self) -> float:
        """File found complete -> map ready (s)."""
        return self.done_at - self.complete_at


@dataclass
class LiveStats:
    """Counters of a session (read them from any thread; they are only ever increased)."""

    captures: int = 0  # complete raw frames seen
    classified: int = 0
    skipped: int = 0
    problems: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=20))  # done_at of the last maps

    def rate_per_s(self, now: float | None = None) -> float:
        """Maps per second over the last (up to 20) maps; 0 with fewer than two."""
        times = list(self.recent)
        if len(times) < 2:
            return 0.0
        span = (time.perf_counter() if now is None else now) - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0


class LivePipeline:
    """Run ``source`` -> prepare -> ``classify`` on two threads until :meth:`stop`.

    Callbacks (called on the pipeline's threads; keep them short, e.g. post to a GUI queue):
    ``on_result(LiveResult)``, ``on_event(event)`` for references changed, skipped
    captures and source problems, ``on_error(capture_id, exception)`` when one capture
    fails (the session goes on).
    """

    def __init__(
        self,
        source: CaptureSource,
        classify: Classify,
        *,
        on_result: Callable[[LiveResult], None],
        on_event: Callable[[SourceEvent], None] | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
        poll_s: float = 0.02,
        profile_name: str | None = None,
        workers: int | None = None,
        hold_s: float = HOLD_FOR_OLDER_S,
        rgb: bool = True,
    ) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be positive, got {poll_s}")
        workers = getattr(classify, "workers", 1) if workers is None else workers
        if not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers  # classifier threads
        self.source = source
        self._classify = classify
        self._on_result = on_result
        self._on_event = on_event or (lambda _event: None)
        self._on_error = on_error or (lambda _cid, _exc: None)
        self.poll_s = poll_s
        self.hold_s = hold_s
        self.rgb = rgb  # False: no synthetic RGB (a consumer that shows no image, e.g. watch)
        self.profile_name = profile_name
        self.stats = LiveStats()
        # Waiting captures, oldest first: (sequence, prepared, complete_at); with several
        # classifiers each capture is still to prepare. One place per classifier.
        self._waiting: deque[tuple[int, Prepared | NewCapture, float]] = deque()
        self._sequence = 0  # captures put in the mailbox so far (reader thread only)
        self._delivered = -1  # sequence of the newest map handed on (under self._deliver)
        self._in_flight: set[int] = set()  # sequences taken by a classifier and not yet ended (under self._deliver)
        self._deliver = threading.Condition()  # maps are handed on one at a time, in capture order
        # The reference half of calibration, once per dark/white pair, per preparing thread.
        self._calibration = threading.local()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- control

    def start(self) -> "LivePipeline":
        if self._threads:
            raise RuntimeError("live pipeline already started")
        self._threads = [
            threading.Thread(target=self._read_loop, name="neurohsi-live-read", daemon=True),
            *(
                threading.Thread(target=self._classify_loop, name=f"neurohsi-live-classify-{k}", daemon=True)
                for k in range(self.workers)
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop both threads (the capture being classified finishes first) and close the source."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        with self._deliver:
            self._deliver.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self.source.close()

    def pause(self) -> None:
        """Stop taking captures; on :meth:`resume` the newest one is next (the ones between are skipped)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def __enter__(self) -> "LivePipeline":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- threads

    def _read_loop(self) -> None:
        while not self._stopping.is_set():
            started = time.perf_counter()
            if not self._paused.is_set():
                try:
                    events = self.source.poll()
                except Exception as exc:  # noqa: BLE001 - a folder gone away: say so, keep trying
                    self.stats.problems += 1
                    self._on_error("source", exc)
                    events = []
                for event in events:
                    self._handle(event)
            self._stopping.wait(max(0.0, self.poll_s - (time.perf_counter() - started)))

    def _handle(self, event: SourceEvent) -> None:
        if isinstance(event, NewCapture):
            self.stats.captures += 1
            # One classifier: prepare here, overlapping the map being made. Several: each
            # prepares its own capture, so one dropped from the mailbox costs only its reading.
            prepared = self._prepare(event) if self.workers == 1 else event
            if prepared is None:
                return
            with self._cond:
                if len(self._waiting) >= self.workers:
                    self._waiting.popleft()  # every classifier busy and every place taken: drop the oldest
                    self.stats.skipped += 1
                self._waiting.append((self._sequence, prepared, event.complete_at))
                self._sequence += 1
                self._cond.notify()
            return
        if isinstance(event, Skipped):
            self.stats.captures += len(event.paths)
            self.stats.skipped += len(event.paths)
        elif isinstance(event, SourceProblem):
            self.stats.problems += 1
        elif not isinstance(event, ReferencesChanged):
            return
        self._on_event(event)

    def _prepare(self, event: NewCapture) -> Prepared | None:
        """``event``'s capture prepared (None after reporting a failure)."""
        cache = getattr(self._calibration, "cache", None)
        if cache is None:
            cache = self._calibration.cache = CalibrationCache(size=2)
        try:
            prepared = prepare(event.capture, profile_name=self.profile_name, references=cache, rgb=self.rgb)
        except Exception as exc:  # noqa: BLE001 - one bad capture must not end the session
            self.stats.problems += 1
            self._on_error(event.capture.capture_id, exc)
            return None
        # "total": wall clock from the start of reading the frame (in the source) to now.
        total = event.read_s + (time.perf_counter() - event.complete_at)
        return replace(prepared, timings_s={"read": event.read_s, **prepared.timings_s, "total": total})

    def _classify_loop(self) -> None:
        # Pay a process's first-map costs (runtime sessions, buffers) before the first capture, not on it.
        warm = getattr(self._classify, "warm_up", None)
        if warm is not None:
            try:
                warm()
            except Exception:  # noqa: BLE001 - a failed warm-up shows again, reported, on the first capture
                pass
        while True:
            with self._cond:
                while not self._waiting and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                sequence, prepared, complete_at = self._waiting.popleft()
                with self._deliver:
                    self._in_flight.add(sequence)
            try:
                self._classify_one(sequence, prepared, complete_at)
            finally:
                with self._deliver:
                    self._in_flight.discard(sequence)
                    self._deliver.notify_all()  # a newer map may be waiting for this one

    def _classify_one(self, sequence: int, prepared: Prepared | NewCapture, complete_at: float) -> None:
        if isinstance(prepared, NewCapture):
            prepared = self._prepare(prepared)
            if prepared is None:
                return
        try:
            result, reason = self._classify(prepared)
        except Exception as exc:  # noqa: BLE001 - one failed capture must not end the session
            self.stats.problems += 1
            self._on_error(prepared.capture.capture_id, exc)
            return
        # Lock order: _cond before _deliver (the loop takes both); never _cond while holding _deliver.
        with self._deliver:
            # An older capture still being classified: wait for its map (in order), up to hold_s.
            self._deliver.wait_for(
                lambda: self._stopping.is_set() or not any(s < sequence for s in self._in_flight), self.hold_s
            )
            late = sequence < self._delivered  # a newer map was already handed on
            if not late:
                self._hand_on(sequence, prepared, result, reason, complete_at)
        if late:
            with self._cond:
                self.stats.skipped += 1

    def _hand_on(self, sequence: int, prepared: Prepared, result, reason: str | None, complete_at: float) -> None:
        """Give the consumer the map of capture ``sequence`` (under ``self._deliver``)."""
        self._delivered = sequence
        done = time.perf_counter()
        self.stats.classified += 1
        self.stats.recent.append(done)
        self._on_result(LiveResult(prepared, result, reason, complete_at, done, self.stats.skipped))


def local_classifier(
    model: LoadedModel, *, threads: int | None = LIVE_INFERENCE_THREADS, workers: int | None = None
) -> Classify:
    """``classify`` for :class:`LivePipeline` that runs ``model`` here (no endpoint, so no fallback reason).

    The dense twin of the network is made once here, not per capture (same weights,
    so the same maps as :func:`core.model.inference.classify`). ``threads``: torch threads
    for each map (None: every usable core). ``workers``: captures classified at once
    (default: one per usable core, at most :data:`LIVE_CLASSIFIERS`); the network is
    only read (inference mode), so concurrent calls are safe.
    """
    dense = LoadedModel(dense_net(model), model.info, model.path)

    def classify(prepared: Prepared) -> tuple[ClassificationResult, str | None]:
        return classify_prepared(prepared, dense, threads=threads), None

    classify.workers = max(1, min(LIVE_CLASSIFIERS, usable_cores())) if workers is None else workers
    def warm() -> None:
        """Two full-sensor synthetic maps on this classifier thread as the pipeline starts (LivePipeline
        calls it on each): the runtime makes its buffers on the first run at a size and plans its memory
        on the second, and the two threads' first concurrent maps happen here, not on the camera's first
        captures (which they made late: 2 of the first 10 at 20/s skipped, docs/benchmarks/live.md)."""
        for _ in range(2):
            warm_up(dense, threads=threads, full_sensor=True)

    classify.warm_up = warm
    return classify


def dense_net(model: LoadedModel):
    """``model.net`` as a :class:`core.model.network.DenseConv2DNet` with the model file's padding (made once per session)."""
    from core.model.network import DenseConv2DNet

    if isinstance(model.net, DenseConv2DNet) or model.info.inputs == "spectra":  # a SpectralNet runs per pixel as is
        return model.net
    return DenseConv2DNet.from_patch_model(model.net, padding=model.info.padding)


def describe_error(capture_id: str, exc: BaseException) -> str:
    """One line for a failed live capture."""
    return f"{capture_id}: {one_line(exc)}"
