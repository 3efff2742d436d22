"""``neurohsi watch DIR``: classify every new capture saved into a folder, one JSON line each, until Ctrl+C.

For headless stations and logging. Captures are NEMESIS-named raw frames
(``IDxxxxCyy.tif``); references are the folder's ``IDxxxxCDyy``/``IDxxxxCWyy``
pairs (a newer pair replaces the old one) or the pair given with --dark/--white.
When captures arrive faster than they can be classified the newest is always
next and the ones between are skipped (counted in each line). stdout carries
only the JSON lines; notices (references changed, skipped, problems) go to stderr.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
from pathlib import Path

from app.cli.classify_commands import add_remote_arguments, check_reference_and_remote_args, endpoint_target

STATUS_EVERY_S = 0.2  # how often the main thread looks up from the queue (Ctrl+C is handled there)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "watch",
        help="classify every new capture saved into a folder (one JSON line each, until Ctrl+C)",
        description="Watch a folder and classify each new raw capture as it is saved, newest first. "
        "Research use only - not for diagnostic use.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="folder the camera software saves captures into")
    p.add_argument("--model", type=Path, help="model file (.safetensors; default: the installed model, "
                                              "see `neurohsi model current`, else the demo model)")
    p.add_argument("--dark", type=Path, help="dark reference to use for the whole session (with --white)")
    p.add_argument("--white", type=Path, help="white reference to use for the whole session (with --dark)")
    p.add_argument("--profile", help="camera profile id (default: from the TIFF metadata)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write <capture>_map.png and <capture>.npz here")
    p.add_argument("--palette", choices=("thesis", "colourblind"), default="thesis", help="map colours")
    p.add_argument("--force", action="store_true",
                   help="write --out files for unusable captures too (marked unusable); by default they get none")
    p.add_argument("--poll-ms", type=float, default=20.0, help="how often to look at the folder (default 20 ms)")
    add_remote_arguments(p)  # with --fallback-local, each capture falls back on its own
    p.set_defaults(handler=cmd_watch)


def _check_args(args: argparse.Namespace) -> None:
    if not args.folder.is_dir():
        raise ValueError(f"{args.folder}: folder to watch not found")
    check_reference_and_remote_args(args)
    if args.out is not None and not args.out.is_dir():
        raise ValueError(f"{args.out}: folder for --out does not exist")
    if not args.poll_ms > 0:
        raise ValueError(f"--poll-ms must be positive, got {args.poll_ms}")


def _classifier(args: argparse.Namespace):
    """``classify(prepared) -> (result, fallback reason)`` for the live pipeline; the model is checked now."""
    from core.model.choice import resolve_model
    from remote.remote_or_local import RemotePolicy, live_classifier

    return live_classifier(lambda: resolve_model(args.model),
                           endpoint=None if args.endpoint is None else endpoint_target(args),
                           fallback_local=args.fallback_local, policy=RemotePolicy(deadline_s=args.deadline))


def capture_line(live, written: dict[str, str]) -> dict:
    """The JSON line of one live capture: identity, quality, classes, timings (ms), outputs, skipped so far."""
    from app.cli.classify_commands import summarise

    summary = summarise(live.result, written)  # includes "quality" (report) and "out_of_distribution_fraction"
    quality = live.result.quality
    return {
        "capture_id": live.prepared.capture.capture_id,
        "path": str(live.prepared.capture.raw_path),
        # The same checks as a capture opened alone: status first, so a log reader cannot miss it.
        "quality_status": None if quality is None else quality.status,
        "warnings": [] if quality is None else [c.message for c in quality.problems],
        **summary,
        "fallback_reason": live.fallback_reason,
        "timings_ms": {**summary["timings_ms"], "file_to_map": round(1000 * live.latency_s, 2)},
        "skipped_total": live.skipped_total,
    }


def drain(inbox: queue.Queue) -> list:
    """Everything waiting in ``inbox`` now, oldest first, without blocking."""
    items = []
    while True:
        try:
            items.append(inbox.get_nowait())
        except queue.Empty:
            return items


def report_batch(batch: list, *, out: Path | None, palette: str, force: bool = False):
    """``(line, stream)`` for each ``(kind, item)`` of ``batch`` (oldest first); writes outputs to ``out``.

    Writing a map's PNG + npz costs ~85 ms of CPU: when maps came faster than that, only
    the newest of the batch is written (the older ones still get their JSON line, marked
    ``"outputs_skipped": true``), so results never pile up (each holds its cube). An unusable
    capture gets no files unless ``force`` (its line says ``"outputs_withheld"`` and why).
    """
    from app.cli.classify_commands import write_outputs

    newest = max((i for i, (kind, _) in enumerate(batch) if kind == "result"), default=-1)
    for i, (kind, item) in enumerate(batch):
        if kind == "result":
            written = {}
            quality = item.result.quality
            withheld = out is not None and not force and quality is not None and not quality.usable
            if out is not None and i == newest and not withheld:
                cid = item.prepared.capture.capture_id
                written = write_outputs(item.result, output=out / f"{cid}_map.png", npz=out / f"{cid}.npz",
                                        palette=palette)
            line = capture_line(item, written)
            if withheld:
                line["outputs_withheld"] = f"capture unusable: {quality.reason} (--force writes it anyway)"
            elif out is not None and i != newest:
                line["outputs_skipped"] = True  # a newer map was already waiting
            yield json.dumps(line, separators=(",", ":")), sys.stdout
        elif kind == "event":
            yield _notice(item), sys.stderr
        else:
            yield f"neurohsi: warning: {item}", sys.stderr


def _notice(event) -> str:
    from core.capture.source import ReferencesChanged, Skipped, SourceProblem

    if isinstance(event, ReferencesChanged):
        verb = "references" if event.replaced is None else "new references"
        return f"neurohsi: {verb}: {event.references.name}"
    if isinstance(event, Skipped):
        return f"neurohsi: skipped {len(event.paths)} older capture(s): a newer one was ready"
    if isinstance(event, SourceProblem):
        return f"neurohsi: warning: {event.message}"
    return f"neurohsi: {event}"


def cmd_watch(args: argparse.Namespace) -> int:
    _check_args(args)
    from core.capture.source import WatchedFolder
    from core.model.live import LivePipeline, describe_error

    classify = _classifier(args)
    references = None if args.dark is None else (args.dark, args.white)
    source = WatchedFolder(args.folder, references=references)
    inbox: queue.Queue = queue.Queue()
    pipeline = LivePipeline(
        source,
        classify,
        on_result=lambda live: inbox.put(("result", live)),
        on_event=lambda event: inbox.put(("event", event)),
        on_error=lambda cid, exc: inbox.put(("error", describe_error(cid, exc))),
        poll_s=args.poll_ms / 1000.0,
        profile_name=args.profile,
        rgb=False,  # no image is written or shown: the map PNG holds class ids, the NPZ no RGB
    )
    print(f"neurohsi: watching {args.folder} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    pipeline.start()
    try:
        while True:
            try:
                batch = [inbox.get(timeout=STATUS_EVERY_S)]
            except queue.Empty:
                continue
            batch += drain(inbox)
            for line, stream in report_batch(batch, out=args.out, palette=args.palette, force=args.force):
                print(line, file=stream, flush=True)
            del batch
    except KeyboardInterrupt:
        stats = pipeline.stats
        print(f"neurohsi: stopped watching: {stats.classified} classified, {stats.skipped} skipped",
              file=sys.stderr, flush=True)
        return 0
    finally:
        pipeline.stop()
