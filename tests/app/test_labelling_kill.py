"""A labelling session killed with SIGKILL 12 s after its last stroke loses nothing (real 10 s autosave).

The child process paints with real mouse events, waits for the first autosave
tick, paints again right after it (the worst moment: a whole interval to go
before the next tick), reports, and keeps its event loop running until the test
kills it. A fresh widget then opens the folder, is offered the recovery file and
restores every stroke.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.application import create_application
from app.labelling import prompts
from app.labelling.widget import LabellingWidget
from core.labels import store

ROOT = Path(__file__).resolve().parents[2]
H, W = 60, 80
CHILD = r"""
import sys, time
from pathlib import Path
import numpy as np
from PySide6 import QtCore
from PySide6.QtTest import QTest
from app.application import create_application
from app.labelling.widget import LabellingWidget
from core.labels import store

folder = Path(sys.argv[1])
app = create_application([])
w = LabellingWidget(restore_prompt=lambda p, f: True, error_sink=lambda e: print("ERROR", e, flush=True))
w.resize(900, 600)
w.show()
w.open(folder, None, shape=(%(H)d, %(W)d))
w.brush_spin.setValue(5)
vp = w.canvas.viewport()
LEFT, NOMOD = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier

def stroke(row, c0, c1):
    QTest.mousePress(vp, LEFT, NOMOD, w.canvas.image_to_widget(row + 0.5, c0 + 0.5))
    for c in range(c0, c1 + 1, 3):
        QTest.mouseMove(vp, w.canvas.image_to_widget(row + 0.5, c + 0.5))
    QTest.mouseRelease(vp, LEFT, NOMOD, w.canvas.image_to_widget(row + 0.5, c1 + 0.5))
    app.processEvents()

stroke(10, 5, 60)
w.select_class(2)
stroke(20, 10, 70)
while not store.recovery_path(folder).exists():  # the first 10 s tick
    app.processEvents()
    time.sleep(0.02)
w.select_class(4)
stroke(40, 3, 75)  # just after a tick: the next one is a whole interval away
np.save(folder / "expected.npy", w.session.editor.labels)
print("LAST_STROKE", flush=True)
app.exec()
""" % {"H": H, "W": W}


def test_sigkill_12_s_after_the_last_stroke_recovers_every_stroke(qtbot, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in child.stdout:  # blocks until the child has painted (about 10 s)
            lines.append(line)
            if line.startswith("LAST_STROKE"):
                break
        else:
            pytest.fail("child ended before painting:\n" + "".join(lines))
        last_stroke = time.monotonic()
        time.sleep(max(0.0, last_stroke + 12.0 - time.monotonic()))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    expected = np.load(tmp_path / "expected.npy")
    assert set(np.unique(expected)) == {0, 1, 2, 4}
    assert not (tmp_path / store.LABELS_NAME).exists()  # nothing was saved by hand
    create_application([])
    offered = []
    w = LabellingWidget(restore_prompt=lambda parent, folder: offered.append(folder) or True,
                        save_prompt=lambda parent, folder: prompts.DISCARD, error_sink=pytest.fail)
    qtbot.addWidget(w)
    w.open(tmp_path, None, shape=(H, W))
    assert offered == [tmp_path]
    assert np.array_equal(w.session.editor.labels, expected)
    w.shutdown()
