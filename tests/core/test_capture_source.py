"""The watched folder: complete files only (a real TIFF written in 10 chunks), references, skipping."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.capture.files import frame_to_bytes
from core.capture.source import NewCapture, ReferencesChanged, Skipped, SourceProblem, WatchedFolder
from core.errors import CaptureError
from core.capture.synthetic.captures import generate_capture, small_profile
from tests.support.live_writer import write_progressively, write_whole


@pytest.fixture(scope="module")
def synthetic():
    return generate_capture(seed=7, profile=small_profile(24, 32))


def _tiffs(synthetic, raw=None):
    meta = synthetic.metadata
    return (frame_to_bytes(synthetic.raw if raw is None else raw, meta), frame_to_bytes(synthetic.dark, meta),
            frame_to_bytes(synthetic.white, meta))


def _poll_until(source, predicate, timeout=5.0):
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += source.poll()
        if predicate(events):
            return events
        time.sleep(0.01)
    return events


def test_a_file_written_in_ten_chunks_counts_once_after_the_last_chunk(tmp_path, synthetic):
    raw, dark, white = _tiffs(synthetic)
    write_whole(tmp_path / "ID0001CD01.tif", dark)
    write_whole(tmp_path / "ID0001CW01.tif", white)
    source = WatchedFolder(tmp_path, settle_s=0.05)
    first = source.poll()
    assert [type(e) for e in first] == [ReferencesChanged]  # the pair already there becomes current

    finished: list[float] = []
    writer = threading.Thread(target=lambda: finished.append(write_progressively(tmp_path / "ID0001C02.tif", raw)))
    events: list = []
    writer.start()
    while writer.is_alive():  # poll faster than the writer pauses: half-written states are seen
        events += source.poll()
        time.sleep(0.01)
    events += _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    events += _poll_until(source, lambda ev: False, timeout=0.3)  # and nothing more afterwards
    captures = [e for e in events if isinstance(e, NewCapture)]
    assert len(captures) == 1
    assert captures[0].complete_at > finished[0]
    assert captures[0].capture.capture_id == "ID0001C02"
    np.testing.assert_array_equal(captures[0].capture.raw, synthetic.raw)
    np.testing.assert_array_equal(captures[0].capture.dark, synthetic.dark)
    assert not [e for e in events if isinstance(e, SourceProblem)]


def test_a_newer_pair_replaces_the_references_and_is_announced(tmp_path, synthetic):
    raw, dark, white = _tiffs(synthetic)
    write_whole(tmp_path / "ID0001CD01.tif", dark)
    write_whole(tmp_path / "ID0001CW01.tif", white)
    source = WatchedFolder(tmp_path, settle_s=0.0)
    source.poll()
    brighter = np.minimum(synthetic.white.astype(np.uint32) + 100, np.iinfo(synthetic.white.dtype).max)
    write_whole(tmp_path / "ID0001CD05.tif", dark)
    write_whole(tmp_path / "ID0001CW05.tif", frame_to_bytes(brighter.astype(synthetic.white.dtype), synthetic.metadata))
    events = _poll_until(source, lambda ev: any(isinstance(e, ReferencesChanged) for e in ev))
    (changed,) = [e for e in events if isinstance(e, ReferencesChanged)]
    assert changed.references.white_path.name == "ID0001CW05.tif"
    assert changed.replaced.white_path.name == "ID0001CW01.tif"
    write_whole(tmp_path / "ID0001C06.tif", raw)  # no pair of its own: the current (newer) pair
    events = _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    (capture,) = [e.capture for e in events if isinstance(e, NewCapture)]
    assert capture.white_path.name == "ID0001CW05.tif"
    np.testing.assert_array_equal(capture.white, brighter)


def test_a_pair_given_once_is_kept(tmp_path, synthetic):
    raw, dark, white = _tiffs(synthetic)
    refs = tmp_path / "refs"
    refs.mkdir()
    given = (write_whole(refs / "dark.tif", dark), write_whole(refs / "white.tif", white))
    watch = tmp_path / "watch"
    watch.mkdir()
    source = WatchedFolder(watch, references=given, settle_s=0.0)
    assert [type(e) for e in source.poll()] == [ReferencesChanged]
    write_whole(watch / "ID0002CD01.tif", dark)
    write_whole(watch / "ID0002CW01.tif", white)
    write_whole(watch / "ID0002C01.tif", raw)
    events = _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    assert not [e for e in events if isinstance(e, ReferencesChanged)]
    (capture,) = [e.capture for e in events if isinstance(e, NewCapture)]
    assert capture.dark_path == given[0]


def test_only_the_newest_complete_capture_is_read_the_rest_are_skipped(tmp_path, synthetic):
    raw, dark, white = _tiffs(synthetic)
    write_whole(tmp_path / "ID0003CD01.tif", dark)
    write_whole(tmp_path / "ID0003CW01.tif", white)
    source = WatchedFolder(tmp_path, settle_s=0.0)
    source.poll()
    for n in range(2, 6):
        write_whole(tmp_path / f"ID0003C{n:02d}.tif", raw)
        time.sleep(0.01)  # distinct modification times
    events = source.poll()
    assert [type(e) for e in events] == [Skipped, NewCapture]
    assert [p.name for p in events[0].paths] == ["ID0003C02.tif", "ID0003C03.tif", "ID0003C04.tif"]
    assert events[1].capture.capture_id == "ID0003C05"
    assert source.poll() == []


def test_files_there_before_the_start_are_not_captures_and_problems_are_one_line(tmp_path, synthetic):
    raw, dark, white = _tiffs(synthetic)
    write_whole(tmp_path / "ID0004C01.tif", raw)  # no references anywhere
    source = WatchedFolder(tmp_path, settle_s=0.0)
    assert source.poll() == []
    write_whole(tmp_path / "ID0004C02.tif", raw)
    (problem,) = _poll_until(source, lambda ev: bool(ev))
    assert isinstance(problem, SourceProblem) and "no dark/white references" in problem.message
    assert "ID0004C02.tif" in problem.message and "\n" not in problem.message
    with pytest.raises(CaptureError, match="folder to watch not found"):
        WatchedFolder(tmp_path / "missing")


def test_in_a_busy_folder_handled_files_stay_handled_and_a_replaced_one_is_new_again(tmp_path, synthetic):
    """Polling keeps state: 300 handled captures and 300 other files are not captures again; a file
    replaced under the same name (renamed over: a new inode; or rewritten in place) is a new capture."""
    raw, dark, white = _tiffs(synthetic)
    write_whole(tmp_path / "ID0001CD01.tif", dark)
    write_whole(tmp_path / "ID0001CW01.tif", white)
    for n in range(300):
        write_whole(tmp_path / f"ID0001C{n + 100:03d}.tif", raw)
        (tmp_path / f"notes{n}.txt").write_text("x")
    source = WatchedFolder(tmp_path, settle_s=0.0)
    assert [type(e) for e in source.poll()] == [ReferencesChanged]
    assert _poll_until(source, lambda ev: False, timeout=0.2) == []  # there before the start: never captures
    write_whole(tmp_path / "ID0001C999.tif", raw)
    events = _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    assert [e.capture.capture_id for e in events if isinstance(e, NewCapture)] == ["ID0001C999"]
    assert _poll_until(source, lambda ev: False, timeout=0.2) == []
    other = frame_to_bytes(synthetic.raw[::-1].copy(), synthetic.metadata)
    write_whole(tmp_path / "aside.tmp", other)
    (tmp_path / "aside.tmp").replace(tmp_path / "ID0001C150.tif")
    events = _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    (new,) = [e for e in events if isinstance(e, NewCapture)]
    assert new.capture.capture_id == "ID0001C150"
    np.testing.assert_array_equal(new.capture.raw, synthetic.raw[::-1])
    write_whole(tmp_path / "ID0001C120.tif", frame_to_bytes(synthetic.raw[:, ::-1].copy(), synthetic.metadata))
    time.sleep(0.05)  # in place, same inode, new mtime: found on its turn for a re-check (every 10th poll)
    events = _poll_until(source, lambda ev: any(isinstance(e, NewCapture) for e in ev))
    assert [e.capture.capture_id for e in events if isinstance(e, NewCapture)] == ["ID0001C120"]
    for n in range(300):  # files rotated away: the source forgets them
        (tmp_path / f"notes{n}.txt").unlink()
    source.poll()
    assert len(source._names) == 300 + 3  # the captures, the pair and nothing removed
