"""The one way GUI jobs start: progress and the result delivered, errors to the caller and the window's sink."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.job_runner import run_job, sink_of


def _counting(n: int):
    for i in range(n):
        yield i / n
    return "done"


def _failing(message: str):
    yield 0.5
    raise ValueError(message)


def _crashing():
    yield 0.0
    raise RecursionError("nested too deep")


def test_progress_and_result_are_delivered(qtbot, make_window):
    window = make_window()
    progress, returned = [], []
    run_job(_counting, 4, on_yield=progress.append, on_return=returned.append, owner=window)
    qtbot.waitUntil(lambda: bool(returned), timeout=10_000)
    assert progress == [0.0, 0.25, 0.5, 0.75] and returned == ["done"]
    assert [n for n in window.sink.history if n.level == "error"] == []


def test_an_error_reaches_the_caller_and_the_sink_of_the_owners_window(qtbot, make_window):
    window = make_window()
    child = QWidget(window)  # e.g. the registry view inside the retraining dialog
    assert sink_of(child) is window.sink and sink_of(QWidget()) is None
    seen = []
    run_job(_failing, "the endpoint said no", on_return=seen.append, on_error=seen.append,
            owner=child, context="Model registry")
    qtbot.waitUntil(lambda: window.sink.last is not None and window.sink.last.level == "error", timeout=10_000)
    assert len(seen) == 1 and isinstance(seen[0], ValueError)
    assert window.sink.last.level == "error" and window.sink.last.text == "Model registry: the endpoint said no"


def test_a_runtime_error_is_surfaced_not_swallowed(qtbot, make_window):
    window = make_window()
    run_job(_crashing, on_return=lambda _v: None, owner=window)
    qtbot.waitUntil(lambda: window.sink.last is not None and window.sink.last.level == "error", timeout=10_000)
    assert "RecursionError" in window.sink.last.text and "nested too deep" in window.sink.last.text
