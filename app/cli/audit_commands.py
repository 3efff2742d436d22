"""``neurohsi audit show|verify|export``: read, check and hand over the local audit log."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

EXIT_TAMPERED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="the audit trail: who did what, when, with which model")
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    s = sub.add_parser("show", help="print the log, oldest first")
    s.add_argument("--last", type=int, metavar="N", help="only the last N entries")
    s.add_argument("--event", help="only this event (e.g. classified, exported, sent)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(handler=cmd_show)
    v = sub.add_parser("verify", help="check the hash chain and its head: exit 1 if any entry was changed or removed")
    v.set_defaults(handler=cmd_verify)
    e = sub.add_parser("export", help="write the log for the hospital's records (.csv or .json)")
    e.add_argument("out", type=Path, help="OUT.csv or OUT.json")
    e.set_defaults(handler=cmd_export)


def cmd_show(args: argparse.Namespace) -> int:
    from core.audit.events import default_log
    from core.errors import escape_controls

    if args.last is not None and args.last < 1:
        raise ValueError(f"--last must be at least 1, got {args.last}")
    entries = default_log().entries()
    if args.event:
        entries = [e for e in entries if e.event == args.event]
    if args.last:
        entries = entries[-args.last:]
    for e in entries:
        if args.json:
            print(json.dumps(e.to_dict(), ensure_ascii=False))
        else:
            who = e.os_user + (f" ({e.operator})" if e.operator else "")
            details = json.dumps(e.details, ensure_ascii=False, separators=(", ", ": "))
            print(escape_controls(f"{e.seq:6d}  {e.at}  {who}  {e.event}  {details}"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import sys

    from core.audit.events import default_log

    log = default_log()
    problems = log.verify()
    if problems:
        for line in problems:
            print(f"neurohsi: audit: {line}", file=sys.stderr)
        print(f"{log.path}: NOT intact ({len(problems)} problem(s))")
        return EXIT_TAMPERED
    print(f"{log.path}: intact, {len(log.entries())} entries, chain ends at the head")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.audit.events import default_log, record

    written = default_log().export(args.out)
    record("exported", format="audit-log", files=[str(written)])
    print(written)
    return 0
