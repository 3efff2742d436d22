"""``neurohsi gui [CAPTURE] [--model M] [--classify] [--screenshot PNG]``: the desktop app.

With ``--screenshot`` the app opens the capture, classifies it if asked, renders,
saves a grab of the window and exits (README screenshots, under Xvfb). Qt is
imported only inside the handler so the rest of the CLI never loads it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

SCREENSHOT_SIZE = (1600, 940)
SCREENSHOT_TIMEOUT_MS = 120_000
LIVE_SETTLE_MS = 2_000  # with --watch: grab this long after the first live map


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gui", help="open the desktop app (research use only)")
    p.add_argument("capture", nargs="?", type=Path, help="raw capture to open (references found by name)")
    p.add_argument("--model", type=Path,
                   help="model file (default: the installed model, see `neurohsi model current`; else the demo model)")
    p.add_argument("--classify", action="store_true", help="classify the capture once it is open")
    p.add_argument("--watch", type=Path, metavar="DIR", help="live mode: classify every new capture saved into DIR")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="save a grab of the window and exit")
    p.add_argument("--settings", type=Path, metavar="INI",
                   help="settings file (default: the user's; with --screenshot: fresh defaults)")
    p.set_defaults(handler=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    if args.classify and args.capture is None:
        raise ValueError("--classify needs a CAPTURE to classify")
    if args.watch is not None and not args.watch.is_dir():
        raise ValueError(f"{args.watch}: folder to watch not found")
    if args.watch is not None and args.capture is not None:
        raise ValueError("give a CAPTURE to open or --watch DIR, not both")
    if args.screenshot is not None and not args.screenshot.parent.is_dir():
        raise ValueError(f"{args.screenshot}: folder {args.screenshot.parent} does not exist")

    from app.application import create_application
    from app.labelling.integration import install_labelling
    from app.live import install_live
    from app.main_window import MainWindow
    from app.settings import AppSettings

    app = create_application([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="neurohsi-gui-") as tmp:
        if args.settings is not None:
            settings = AppSettings.from_file(args.settings)
        elif args.screenshot is not None:
            settings = AppSettings.from_file(Path(tmp) / "settings.ini")  # reproducible grabs
        else:
            settings = AppSettings()
        window = MainWindow(settings, model_path=args.model)
        install_labelling(window)
        install_live(window)
        if args.screenshot is not None:
            window.sink.show_dialogs = False
            window.resize(*SCREENSHOT_SIZE)
        window.show()
        _warn_without_model(window, args.model, settings)
        if args.screenshot is not None:
            return _screenshot(app, window, args)
        if args.watch is not None:
            window.live.start(args.watch)
        if args.capture is not None:
            if args.classify:
                _classify_once_opened(window)
            window.open_capture(args.capture)
        return app.exec()


def _warn_without_model(window, explicit: Path | None, settings) -> None:
    """Say at start-up, in the model-choice words, when classifying would find no model."""
    from core.errors import ModelFileError, one_line
    from core.model.choice import resolve_model_path

    try:
        resolve_model_path(explicit)  # --model, else the installed model (the store), else the demo
    except ModelFileError as exc:
        window.sink.note(f"No model: {one_line(exc)}", level="warning")


def _classify_once_opened(window) -> None:
    def go(_opened) -> None:
        window.capture_opened.disconnect(go)
        window.classify()

    window.capture_opened.connect(go)


def _screenshot(app, window, args) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    from core.errors import CaptureError

    loop = QEventLoop()
    failures: list[BaseException] = []

    def done(*_args) -> None:
        loop.quit()

    def failed(exc: BaseException) -> None:
        failures.append(exc)
        loop.quit()

    if args.watch is not None:  # the first live map, then the grab
        timer = QTimer(singleShot=True, interval=SCREENSHOT_TIMEOUT_MS)
        timer.timeout.connect(lambda: failed(TimeoutError(f"no capture arrived in {args.watch}")))
        # A few maps in, so the filmstrip and the rate show something.
        window.live.shown.connect(lambda _live: QTimer.singleShot(LIVE_SETTLE_MS, loop.quit))
        if window.live.start(args.watch):
            timer.start()
            loop.exec()
            timer.stop()
            window.live.indicator.tick()
    elif args.capture is not None:
        window.job_failed.connect(failed)
        if args.classify:
            _classify_once_opened(window)
            window.classified.connect(done)
        else:
            window.capture_opened.connect(done)
        timer = QTimer(singleShot=True, interval=SCREENSHOT_TIMEOUT_MS)
        timer.timeout.connect(lambda: failed(TimeoutError("timed out waiting for the capture to open and classify")))
        timer.start()
        window.open_capture(args.capture)
        loop.exec()
        timer.stop()
    if window.opened is None and args.capture is not None:
        exc = failures[0] if failures else CaptureError(args.capture, "could not be opened")
        window.close()
        raise exc
    for exc in failures:
        from core.errors import one_line

        print(f"neurohsi: warning: {one_line(exc)}", file=sys.stderr)
    if window.opened is not None:
        window.image_view.view.autoRange(padding=0.01)
        h, w = window.opened.cube.data.shape[:2]
        window.spectrum.show_pixel(h // 2, w // 2)  # a spectrum and readout, as if hovering the centre
    for _ in range(5):  # let layouts and the scene settle before the grab
        app.processEvents()
    image = window.grab().toImage()
    window.close()
    _save_png(image, args.screenshot)
    print(str(args.screenshot))
    return 0


def _save_png(image, path: Path) -> None:
    """Save a QImage as a 256-colour PNG: a UI grab stays sharp and the file stays small for the README."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise OSError(f"{path}: could not encode the screenshot")
    import io

    picture = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
