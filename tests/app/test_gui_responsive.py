"""The GUI thread never blocks: the slow work (reading, preprocessing, inference) of opening and
classifying a full-resolution capture runs on worker threads, and the event loop keeps ticking.

The test records the thread each stage ran on (what holds on any machine); the largest
event-loop gaps are printed for the record, not asserted (wall clock depends on the machine).
"""
from __future__ import annotations

import threading
import time

from PySide6.QtCore import QTimer

import core.model.inference

class GapMeter:
    """A 5 ms QTimer recording the largest interval between its ticks."""

    def __init__(self) -> None:
        self.timer = QTimer(interval=5)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.largest = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.largest = max(self.largest, now - self.last)
        self.last = now
        self.ticks += 1

    def start(self) -> None:
        self.last, self.largest, self.ticks = None, 0.0, 0
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()


def record_thread(monkeypatch, module, name: str, threads: dict) -> None:
    """Wrap ``module.name`` so each call records the thread it ran on."""
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        threads.setdefault(name, set()).add(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_event_loop_keeps_ticking_during_full_resolution_classification(qtbot, make_window, full_files, monkeypatch):
    raw, model = full_files
    threads: dict[str, set[int]] = {}
    record_thread(monkeypatch, core.model.inference, "load_capture", threads)
    record_thread(monkeypatch, core.model.inference, "preprocess_capture", threads)
    record_thread(monkeypatch, core.model.inference, "predict_dense", threads)
    window = make_window(model)
    meter = GapMeter()
    # Start-up loads torch and the model on a worker (GIL-heavy imports); measure once it is ready.
    qtbot.waitUntil(lambda: window.model_loader.state == "ready", timeout=60_000)
    qtbot.wait(50)  # let the first show settle

    meter.start()
    with qtbot.waitSignal(window.capture_opened, timeout=60_000):
        window.open_capture(raw)
    opened_gap = meter.largest

    meter.start()
    with qtbot.waitSignal(window.classified, timeout=60_000) as blocker:
        window.classify()
    meter.stop()
    print(f"largest gaps: open {1000 * opened_gap:.1f} ms, classify {1000 * meter.largest:.1f} ms, {meter.ticks} ticks")
    assert blocker.args[0].labels.shape == (217, 409)
    gui_thread = threading.get_ident()
    assert set(threads) == {"load_capture", "preprocess_capture", "predict_dense"}
    for stage, idents in threads.items():
        assert gui_thread not in idents, f"{stage} ran on the GUI thread"
    assert meter.ticks >= 2  # the loop ticked while the worker worked
    # The gaps are printed, not asserted: on one core (taskset -c 0) or a loaded CI box the worker
    # holds the CPU and the GIL for a while whatever the design; what holds on any machine is that
    # no stage runs on the GUI thread (above).
