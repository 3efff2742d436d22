"""Live pipeline on a real watched folder: once per complete capture, newest first, skipping under overload."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from core.capture.files import frame_to_bytes
from core.capture.source import ReferencesChanged, WatchedFolder
from core.model.inference import classify, classify_prepared, prepare
from core.model.live import LivePipeline, local_classifier
from core.model.network import Conv2DNet
from core.model.files import load_model, save_model
from core.spectral.chain import preprocess_capture
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.live_writer import write_progressively, write_whole


@pytest.fixture(scope="module")
def synthetic():
    return generate_capture(seed=8, profile=small_profile(24, 32))


@pytest.fixture(scope="module")
def model(tmp_path_factory, synthetic):
    path = tmp_path_factory.mktemp("live-model") / "m.safetensors"
    torch.manual_seed(0)
    save_model(path, Conv2DNet(25, 5), name="live-test", class_ids=(1, 2, 3, 4, 5),
               class_names=("a", "b", "c", "d", "e"), profile_id=preprocess_capture(synthetic.to_capture()).profile_id)
    return load_model(path)


@pytest.fixture
def folder(tmp_path, synthetic):
    write_whole(tmp_path / "ID0009CD01.tif", frame_to_bytes(synthetic.dark, synthetic.metadata))
    write_whole(tmp_path / "ID0009CW01.tif", frame_to_bytes(synthetic.white, synthetic.metadata))
    return tmp_path


class Collector:
    def __init__(self):
        self.results, self.events, self.errors = [], [], []
        self.got = threading.Event()

    def result(self, live):
        self.results.append(live)
        self.got.set()

    def wait_for(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while len(self.results) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.results


def _pipeline(folder, classify, sink: Collector, **kw):
    return LivePipeline(WatchedFolder(folder, settle_s=0.05), classify, on_result=sink.result,
                        on_event=sink.events.append, on_error=lambda cid, exc: sink.errors.append((cid, exc)), **kw)


def test_a_capture_written_in_ten_chunks_is_classified_once_after_the_last(folder, synthetic, model):
    sink = Collector()
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with _pipeline(folder, local_classifier(model), sink):
        finished = write_progressively(folder / "ID0009C02.tif", raw)
        sink.wait_for(1)
        time.sleep(0.4)  # long enough for a second, wrong classification to show up
    assert not sink.errors
    (live,) = sink.results
    assert live.complete_at > finished and live.done_at > live.complete_at
    assert live.prepared.capture.capture_id == "ID0009C02" and live.fallback_reason is None
    np.testing.assert_array_equal(live.result.labels, classify(synthetic.to_capture(), model).labels)
    assert set(live.result.timings_s) >= {"read", "preprocess", "rgb", "infer", "total"}
    assert [type(e) for e in sink.events] == [ReferencesChanged]


def test_overload_skips_intermediate_captures_and_the_newest_is_always_next(folder, synthetic, model):
    sink = Collector()

    def slow(prepared):  # a classifier far slower than the camera
        time.sleep(0.4)
        return classify_prepared(prepared, model), None

    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with _pipeline(folder, slow, sink) as live:
        for n in range(2, 12):
            write_whole(folder / f"ID0009C{n:02d}.tif", raw)
            time.sleep(0.06)
        deadline = time.monotonic() + 20
        while live.stats.classified + live.stats.skipped < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        stats = live.stats
    names = [r.prepared.capture.capture_id for r in sink.results]
    assert stats.captures == 10 and stats.classified + stats.skipped == 10
    assert 2 <= stats.classified < 10 and stats.skipped > 0
    assert names[-1] == "ID0009C11"  # the newest capture is always classified
    assert names == sorted(names)  # never an older map after a newer one
    assert sink.results[-1].skipped_total == stats.skipped


def test_pause_then_resume_takes_the_newest(folder, synthetic, model):
    sink = Collector()
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with _pipeline(folder, local_classifier(model), sink) as live:
        live.pause()
        time.sleep(0.1)
        for n in (2, 3, 4):
            write_whole(folder / f"ID0009C{n:02d}.tif", raw)
            time.sleep(0.02)
        time.sleep(0.3)
        assert sink.results == [] and live.paused
        live.resume()
        sink.wait_for(1)
        time.sleep(0.3)
    assert [r.prepared.capture.capture_id for r in sink.results] == ["ID0009C04"]
    assert live.stats.skipped == 2


def _two_at_once(model, older_done: threading.Event, newer_done: threading.Event, inside: list, most: list):
    """A two-worker classify where C02 (older) finishes only after ``older_done`` is set, C03 at once."""
    lock = threading.Lock()
    both_in = threading.Barrier(2, timeout=10)

    def classify(prepared):
        cid = prepared.capture.capture_id
        with lock:
            inside.append(cid)
            most[0] = max(most[0], len(inside))
        if cid in ("ID0009C02", "ID0009C03"):
            both_in.wait()  # only passes when the second classifier took C03 while C02 is in the first
            if cid == "ID0009C02":
                assert older_done.wait(10)  # the older capture finishes after the newer one
        result = classify_prepared(prepared, model), None
        with lock:
            inside.remove(cid)
        if cid == "ID0009C03":
            newer_done.set()
        return result

    classify.workers = 2
    return classify


def _run_two(folder, synthetic, classify, sink, *, before_start=lambda live: None, **kw):
    """C02, then C03 0.25 s later, through a two-classifier pipeline; its stats once both ended.
    ``before_start(pipeline)`` may change the pipeline before its threads start."""
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    pipeline = _pipeline(folder, classify, sink, **kw)
    before_start(pipeline)
    with pipeline as live:
        assert live.workers == 2
        write_whole(folder / "ID0009C02.tif", raw)
        time.sleep(0.25)
        write_whole(folder / "ID0009C03.tif", raw)
        deadline = time.monotonic() + 20
        while live.stats.classified + live.stats.skipped < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        return live.stats


def test_two_classifiers_work_at_once_and_a_map_finished_first_waits_for_the_older_one(folder, synthetic, model):
    """Both cores busy; the newer capture's map is ready first but is handed on after the older one's."""
    sink = Collector()
    inside, most = [], [0]
    newer_done = threading.Event()
    # The older map is released once the newer one has finished and is waiting to be handed on.
    classify = _two_at_once(model, newer_done, newer_done, inside, most)
    stats = _run_two(folder, synthetic, classify, sink, hold_s=10.0)
    assert not sink.errors
    assert most[0] == 2  # the two captures were in the classifier at the same time
    assert [r.prepared.capture.capture_id for r in sink.results] == ["ID0009C02", "ID0009C03"]
    assert stats.classified == 2 and stats.skipped == 0  # nothing wasted
    assert sink.results[0].done_at <= sink.results[1].done_at


def _late_older_map(folder, synthetic, model, **kw):
    """C02's map is released only once C03's has been handed on (after a 50 ms hold): C02 is late.
    Returns (sink, most captures in the classifier at once, stats)."""
    sink = Collector()
    inside, most = [], [0]
    newer_shown, newer_done = threading.Event(), threading.Event()
    original = sink.result

    def result(live):
        original(live)
        if live.prepared.capture.capture_id == "ID0009C03":
            newer_shown.set()

    sink.result = result
    classify = _two_at_once(model, newer_shown, newer_done, inside, most)
    stats = _run_two(folder, synthetic, classify, sink, hold_s=0.05, **kw)
    return sink, most[0], stats


def test_an_older_map_later_than_the_hold_is_dropped_never_shown_after_a_newer_one(folder, synthetic, model):
    sink, most, stats = _late_older_map(folder, synthetic, model)
    assert not sink.errors
    assert most == 2
    assert [r.prepared.capture.capture_id for r in sink.results] == ["ID0009C03"]
    assert stats.classified == 1 and stats.skipped == 1  # C02's late map counted as skipped, not shown


def test_with_two_classifiers_two_captures_can_wait_and_a_third_drops_the_oldest(folder, synthetic, model):
    """Arrivals bunch up at the poll: two waiting captures are both classified; only a third replaces one."""
    sink = Collector()
    release = threading.Event()
    busy = threading.Barrier(3, timeout=10)

    def classify(prepared):
        if prepared.capture.capture_id in ("ID0009C02", "ID0009C03"):
            busy.wait()  # both classifiers hold a capture
            assert release.wait(10)
        return classify_prepared(prepared, model), None

    classify.workers = 2
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    with _pipeline(folder, classify, sink) as live:
        write_whole(folder / "ID0009C02.tif", raw)
        time.sleep(0.15)
        write_whole(folder / "ID0009C03.tif", raw)
        busy.wait()
        for n in (4, 5):  # two arrive while both classifiers are busy: both wait
            write_whole(folder / f"ID0009C{n:02d}.tif", raw)
            time.sleep(0.15)
        deadline = time.monotonic() + 20
        while live.stats.captures < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert live.stats.skipped == 0
        write_whole(folder / "ID0009C06.tif", raw)  # a third: the oldest waiting one (C04) is dropped
        while live.stats.captures < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        release.set()
        while live.stats.classified + live.stats.skipped < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = live.stats
    names = [r.prepared.capture.capture_id for r in sink.results]
    assert names == ["ID0009C02", "ID0009C03", "ID0009C05", "ID0009C06"]
    assert stats.skipped == 1 and stats.classified == 4


def test_one_classifier_unless_the_classifier_says_it_can_run_several(folder, synthetic, model, monkeypatch):
    import core.model.live as live_module

    def plain(prepared):
        return classify_prepared(prepared, model), None

    assert LivePipeline(WatchedFolder(folder), plain, on_result=print).workers == 1
    monkeypatch.setattr(live_module, "usable_cores", lambda: 1)
    assert local_classifier(model).workers == 1  # one core: a second classifier only contends
    monkeypatch.setattr(live_module, "usable_cores", lambda: 16)
    assert local_classifier(model).workers == live_module.LIVE_CLASSIFIERS == 2
    assert local_classifier(model, workers=3).workers == 3
    with pytest.raises(ValueError, match="workers"):
        LivePipeline(WatchedFolder(folder), plain, on_result=print, workers=0)


@pytest.mark.parametrize("workers, preparer", [(1, "neurohsi-live-read"), (2, "neurohsi-live-classify")])
def test_with_several_classifiers_each_prepares_its_own_capture(folder, synthetic, model, monkeypatch, workers, preparer):
    """So a capture replaced in the slot under overload costs its reading only, not its preparation."""
    import core.model.live as live_module

    threads = []
    real_prepare = live_module.prepare

    def prepare(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(live_module, "prepare", prepare)
    sink = Collector()
    with _pipeline(folder, local_classifier(model, workers=workers), sink):
        write_whole(folder / "ID0009C02.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))
        sink.wait_for(1)
    assert not sink.errors and len(sink.results) == 1
    assert len(threads) == 1 and threads[0].startswith(preparer)
    np.testing.assert_array_equal(sink.results[0].result.rgb, classify(synthetic.to_capture(), model).rgb)


def test_each_classifier_thread_warms_up_before_its_first_capture_and_a_failed_warm_up_is_harmless(
        folder, synthetic, model):
    events = []
    lock = threading.Lock()

    def classify(prepared):
        with lock:
            events.append(("map", threading.current_thread().name))
        return classify_prepared(prepared, model), None

    def warm_up():
        with lock:
            events.append(("warm", threading.current_thread().name))
        raise RuntimeError("no built-in profile to warm with")  # must not stop the pipeline

    classify.workers = 2
    classify.warm_up = warm_up
    sink = Collector()
    with _pipeline(folder, classify, sink):
        write_whole(folder / "ID0009C02.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))
        sink.wait_for(1)
    assert not sink.errors and len(sink.results) == 1
    warmed = [name for kind, name in events if kind == "warm"]
    assert len(warmed) == 2 and len(set(warmed)) == 2  # once on each classifier thread
    first_map = next(i for i, (kind, _name) in enumerate(events) if kind == "map")
    mapper = events[first_map][1]
    assert ("warm", mapper) in events[:first_map]  # that thread warmed before it mapped


def test_the_local_classifier_warms_the_session_its_maps_use(model, synthetic, monkeypatch):
    from core.model import ort_runtime
    from core.model.inference import prepare

    used = []
    real = ort_runtime.session_for

    def recording(key, padding, make_dense, threads):
        used.append((id(key), padding, threads))
        return real(key, padding, make_dense, threads)

    monkeypatch.setattr(ort_runtime, "session_for", recording)
    monkeypatch.setenv(ort_runtime.RUNTIME_ENV, "onnxruntime")
    live = local_classifier(model, threads=1)
    live.warm_up()  # two synthetic full-sensor frames of the model's profile (small here)
    assert len(used) == 2 and used[1] == used[0]  # the second run plans the runtime's memory
    live(prepare(synthetic.to_capture()))
    assert used[2] == used[0]  # the first real map ran in the session the warm-up built


def test_without_rgb_the_pipeline_makes_the_same_map_and_no_image(folder, synthetic, model):
    """For a consumer that shows no image (watch): the same cube, quality, mask and map, no RGB."""
    full, bare = prepare(synthetic.to_capture()), prepare(synthetic.to_capture(), rgb=False)
    assert bare.rgb is None and "rgb" not in bare.timings_s and full.rgb is not None
    np.testing.assert_array_equal(bare.cube.data, full.cube.data)
    np.testing.assert_array_equal(bare.not_measured, full.not_measured)
    assert bare.quality == full.quality
    sink = Collector()
    with _pipeline(folder, local_classifier(model), sink, rgb=False):
        write_whole(folder / "ID0009C02.tif", frame_to_bytes(synthetic.raw, synthetic.metadata))
        sink.wait_for(1)
    assert not sink.errors and len(sink.results) == 1
    live = sink.results[0]
    assert live.prepared.rgb is None and live.result.rgb is None
    np.testing.assert_array_equal(live.result.labels, classify(synthetic.to_capture(), model).labels)


def test_two_classifiers_finishing_out_of_order_under_load_never_lock_up(folder, synthetic, model):
    """Late maps (no hold at all) while captures keep arriving: every capture ends classified or
    skipped, in order, and the pipeline stops (a lock taken in two orders would hang here)."""
    import random

    sink = Collector()
    rng = random.Random(4)

    def jittery(prepared):
        time.sleep(rng.uniform(0.0, 0.03))
        return classify_prepared(prepared, model), None

    jittery.workers = 2
    raw = frame_to_bytes(synthetic.raw, synthetic.metadata)
    live = _pipeline(folder, jittery, sink, hold_s=0.0, poll_s=0.005)
    live.start()
    for n in range(2, 42):
        write_whole(folder / f"ID0009C{n:02d}.tif", raw)
        time.sleep(0.012)
    deadline = time.monotonic() + 60
    while live.stats.classified + live.stats.skipped < live.stats.captures or live.stats.captures < 40:
        assert time.monotonic() < deadline, (live.stats.captures, live.stats.classified, live.stats.skipped)
        time.sleep(0.02)
    live.stop(timeout=30)
    assert not any(t.is_alive() for t in live._threads)
    names = [r.prepared.capture.capture_id for r in sink.results]
    assert names == sorted(names) and len(names) == live.stats.classified and not sink.errors


class _OrderedCondition(threading.Condition):
    """A Condition that notes when ``cond`` is taken by a thread already holding ``deliver``."""

    held = threading.local()

    def __init__(self, name: str, violations: list) -> None:
        super().__init__()
        self.name, self.violations = name, violations

    def __enter__(self):
        stack = self.held.__dict__.setdefault("stack", [])
        if self.name == "cond" and "deliver" in stack:
            self.violations.append(threading.current_thread().name)
        entered = super().__enter__()
        stack.append(self.name)
        return entered

    def __exit__(self, *exc):
        self.held.stack.remove(self.name)
        return super().__exit__(*exc)


def test_the_pipeline_takes_its_two_locks_in_one_order_only(folder, synthetic, model):
    """The classifier loop takes the mailbox lock, then the hand-on lock; a late map (the path that
    counts a skip) must not take them the other way round, or two classifiers can deadlock."""
    violations: list = []

    def tracked(live):
        live._cond, live._deliver = _OrderedCondition("cond", violations), _OrderedCondition("deliver", violations)

    _sink, _most, stats = _late_older_map(folder, synthetic, model, before_start=tracked)
    assert stats.skipped == 1  # the late path ran
    assert violations == []
