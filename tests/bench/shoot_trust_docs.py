"""Scripted surgeon's walkthrough for docs/trust/ (issue 23): a real window under Xvfb + openbox, keys
and clicks sent with xdotool, whole-screen grabs with ImageMagick ``import``.

Scenes: a saturated capture shown anyway in theatre mode after Acknowledge; a clean capture
opened after a warned one; live mode with a capture whose exposure does not match the
references, then an unusable one (the last good map dimmed); a stale live map in theatre.

Usage (not a benchmark; kept beside them, not collected):
  xvfb-run -a -s "-screen 0 1920x1080x24" bash -c \
    "openbox & sleep 1; .venv/bin/python tests/bench/shoot_trust_docs.py docs/trust 1920x1080"
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True, timeout=10)


def main() -> int:
    out, size = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from app.application import create_application
    from app.live import LiveController
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from core.capture.files import frame_to_bytes, write_frame
    from core.capture.synthetic.captures import generate_capture
    from resources import DEMO_MODEL_PATH

    tmp = Path(tempfile.mkdtemp(prefix="neurohsi-trust-shots-"))
    app = create_application([])

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def until(condition, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit("timed out waiting for the window")
            pump(0.05)

    def shoot(name: str) -> None:
        pump(0.8)
        path = out / f"trust-{name}-{size}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=30)
        print("wrote", path)

    def focus() -> None:
        window.activateWindow()
        window.raise_()
        pump(0.3)
        wid = int(window.winId())
        xdo("windowactivate", "--sync", str(wid))

    def key(name: str) -> None:
        focus()
        xdo("key", "--clearmodifiers", name)
        pump(0.5)

    def click(widget) -> None:
        centre = widget.mapToGlobal(QPoint(widget.width() // 2, widget.height() // 2))
        xdo("mousemove", "--sync", str(centre.x()), str(centre.y()), "click", "1")
        pump(0.5)

    def write(folder: Path, cid: str, synthetic, raw=None, meta=None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        base, n = cid.split("C")
        write_frame(folder / f"{base}CD{n}.tif", synthetic.dark, synthetic.metadata)
        write_frame(folder / f"{base}CW{n}.tif", synthetic.white, synthetic.metadata)
        return write_frame(folder / f"{cid}.tif", synthetic.raw if raw is None else raw, meta or synthetic.metadata)

    clean = generate_capture(seed=21, patient="ID18")
    clean_path = write(tmp / "clean", "ID0001C01", clean)
    profile = clean.profile
    (ox, oy), (pw, ph) = profile.offset_xy, profile.pattern_wh
    h, w, _ = profile.cube_shape
    warned = clean.raw.copy()
    for row in (1, 2, 3):  # three bands clipped over a third of the columns: about 4.9 % saturated
        warned[np.ix_(oy + ph * np.arange(h) + row, ox + pw * np.arange(w // 3, 2 * w // 3) + 2)] = 1023
    warned_path = write(tmp / "warned", "ID0002C01", clean, warned)
    saturated_path = write(tmp / "sat", "ID0003C01", clean, np.full_like(clean.raw, 1023))

    settings = AppSettings.from_file(tmp / "settings.ini")
    settings.set("live_stale_after_s", 8)
    window = MainWindow(settings, model_path=DEMO_MODEL_PATH)
    window.sink.show_dialogs = False
    window.showMaximized()
    until(lambda: window.isVisible())
    pump(2.0)

    def open_(path: Path) -> None:
        with_before = window.opened
        window.open_capture(path)
        until(lambda: window.opened is not with_before and not window.is_busy())

    def classify() -> None:
        before = window.result
        key("F5")
        until(lambda: not window.is_busy() and (window.result is not before or window.trust.show_anyway.isVisible()))
        pump(0.5)

    # 1. saturated capture, shown anyway, theatre mode, after Acknowledge
    open_(saturated_path)
    classify()
    click(window.trust.show_anyway)
    key("F11")
    until(window.isFullScreen)
    pump(1.0)
    if window.warnings.isVisible():
        click(window.warnings.ack_button)
    shoot("theatre-unusable-acknowledged")
    key("F11")
    until(lambda: not window.isFullScreen())
    pump(1.0)

    # 2. a clean capture after a warned one
    open_(warned_path)
    classify()
    shoot("warned")
    open_(clean_path)
    classify()
    shoot("clean-after-warned")

    # 3. live mode: a capture whose exposure differs from the references, then an unusable one
    live_dir = tmp / "live"
    live_dir.mkdir()
    (live_dir / "ID0018CD01.tif").write_bytes(frame_to_bytes(clean.dark, clean.metadata))
    (live_dir / "ID0018CW01.tif").write_bytes(frame_to_bytes(clean.white, clean.metadata))
    live = LiveController(window)
    window.live = live
    live.start(live_dir)
    shown = []
    live.shown.connect(shown.append)
    mismatched = replace(clean.metadata, exposure_us=30000.0)
    (live_dir / "ID0018C02.tif").write_bytes(frame_to_bytes(clean.raw, mismatched))
    until(lambda: len(shown) >= 1)
    shoot("live-mismatched-exposure")
    (live_dir / "ID0018C03.tif").write_bytes(frame_to_bytes(np.full_like(clean.raw, 1023), clean.metadata))
    until(lambda: len(shown) >= 2)
    shoot("live-unusable-dimmed")

    # 4. a stale live map in theatre mode
    (live_dir / "ID0018C04.tif").write_bytes(frame_to_bytes(clean.raw, clean.metadata))
    until(lambda: len(shown) >= 3)
    key("F11")
    until(window.isFullScreen)
    until(lambda: "Stale map" in window.warnings.text(), timeout=30)
    pump(1.5)
    shoot("theatre-stale-live-map")
    key("F11")
    live.stop()
    pump(0.5)
    window.close()
    QApplication.processEvents()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    raise SystemExit(main())
