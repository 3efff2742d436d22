"""``neurohsi model list | current | install FILE | revert [VERSION]``: the installed model, for IT and scripts.

The same store (:class:`core.model.installed.ModelStore`, ``$NEUROHSI_HOME/models``),
history, compatibility checks and question text as the retraining dialog's "Use this
model" and "Revert" (:mod:`app.retraining.installing`). A running app notices the
change within a few seconds. Questions are answered with ``--yes`` in scripts; without
a terminal and without ``--yes`` nothing changes.
"""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "model", help="list, show, install or revert the installed model",
        description="The model classify, watch, serve and the app use when no --model is given, and its history "
                    "(who installed what, when, with which verdict). Store: $NEUROHSI_HOME/models "
                    "(default ~/.local/share/neurohsi/models).")
    p.add_argument("--models-dir", help="the models folder (default $NEUROHSI_HOME/models)")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="every install and revert, newest last; * marks the model in use").set_defaults(
        handler=cmd_list)
    sub.add_parser("current", help="the model in use").set_defaults(handler=cmd_current)
    install = sub.add_parser("install", help="copy a model file into the models folder and use it")
    install.add_argument("file", help="model file (.safetensors)")
    install.add_argument("--yes", action="store_true", help="answer yes to the question (for scripts)")
    install.add_argument("--reason", default="", help="why (kept in the history; needed for an override)")
    install.set_defaults(handler=cmd_install)
    revert = sub.add_parser("revert", help="use the model before the current one again (or VERSION)")
    revert.add_argument("version", nargs="?", help="the version number to go back to (e.g. 3 or v3)")
    revert.add_argument("--yes", action="store_true", help="answer yes to the question (for scripts)")
    revert.set_defaults(handler=cmd_revert)


def _store(args):
    from core.model.installed import ModelStore

    return ModelStore(args.models_dir)


def _confirm(question: str, yes: bool) -> bool:
    """True on --yes or a typed y; ValueError when no one can answer (no terminal)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ValueError("this changes the model in use: pass --yes to confirm (no terminal to ask)")
    print(question)
    return input("Proceed? [y/N] ").strip().lower() in ("y", "yes")


def cmd_list(args) -> int:
    from core.errors import escape_controls

    store = _store(args)
    found = store.reconcile()  # a killed install: temp files go, models missing from the history are named
    entries = store.entries()
    if not entries:
        print("nothing installed: classify uses the bundled demo model")
    for i, e in enumerate(entries):
        mark = "*" if i == len(entries) - 1 else " "
        lines = [f"{mark} {e.when[:16].replace('T', ' ')}  {e.action:<7} {e.shown}"
                 f"  by {e.user or 'unknown'}" + (f" ({e.via})" if e.via else "")]
        if e.verdict:
            lines.append(f"      verdict: {e.verdict}")
        if e.override:
            lines.append(f"      override: {e.override}")
        for line in lines:  # each escaped: a name or reason with control characters cannot rewrite the terminal
            print(escape_controls(line))
    for path in found.orphans:
        print(f"  not in the history (an install was interrupted?): {escape_controls(str(path))}; "
              "`neurohsi model install` it to use it")
    if found.removed:
        print(f"  removed {len(found.removed)} temporary file(s) an interrupted install left")
    return 0


def cmd_current(args) -> int:
    from core.errors import escape_controls
    from core.model.choice import resolve_model_path
    from core.model.files import load_model

    entry = _store(args).current()
    path = resolve_model_path(None, models_dir=args.models_dir)  # the one rule (a missing file is an error)
    info = load_model(path).info
    how = "bundled demo model" if entry is None or not entry.path else f"{entry.action} by {entry.user or 'unknown'}"
    print(escape_controls(f"{info.name} v{info.version} sha256 {info.sha256} ({how}) {path}"))
    return 0


def cmd_install(args) -> int:
    from pathlib import Path

    from app.retraining.installing import install_question
    from core.errors import escape_controls
    from core.model.files import load_model
    from core.training.comparison import install_problems

    store = _store(args)
    new = load_model(args.file).info  # a corrupt or foreign file: one line, nothing changed
    current = store.current_path()
    installed = None
    if current is not None and current.is_file():
        installed = load_model(current).info
    problems = install_problems(new, installed)
    verdict = "Not compared (installed with `neurohsi model install`)."
    if not _confirm(escape_controls(install_question(new, verdict, problems)), args.yes or not problems):
        print("nothing changed")
        return 1
    entry = store.install(Path(args.file), verdict=verdict, override=args.reason.strip(), via="cli")
    print(escape_controls(f"installed {entry.shown} (sha256 {entry.sha256}) as {entry.path}"))
    return 0


def cmd_revert(args) -> int:
    from core.errors import ModelFileError, escape_controls

    store = _store(args)
    target = store.revert_target(args.version)
    if target is None:
        what = f"no installed model of version {args.version}" if args.version else "nothing to revert to"
        raise ModelFileError(store.path, what)
    current = store.current()
    question = f"Go back from {current.shown if current else 'the demo model'} to {target.shown}?"
    if not _confirm(escape_controls(question), args.yes):
        print("nothing changed")
        return 1
    entry = store.revert(args.version, via="cli")
    print(escape_controls(f"reverted: {entry.shown} is the model in use again"))
    return 0
