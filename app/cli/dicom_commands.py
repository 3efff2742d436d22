"""``neurohsi export-dicom`` (SC + SEG, optionally sent) and ``neurohsi pacs echo|outbox``.

Patient data come from flags only, never from file names or metadata. The PACS node
comes from ``--pacs-*`` flags over env ``NEUROHSI_PACS_*`` (``remote.pacs.node``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from app.cli.classify_commands import add_ensemble_arguments, add_remote_arguments

    p = subparsers.add_parser(
        "export-dicom",
        help="classify a capture and write the overlay (Secondary Capture) and label map (Segmentation) as DICOM",
        description="Classify a capture and export it for the patient's record: the overlay as a DICOM Secondary "
        "Capture and the label map as a DICOM Segmentation of the same study. Patient data come from these "
        "flags only. Research use only - not for diagnostic use.",
    )
    p.add_argument("raw", type=Path, metavar="CAPTURE", help="raw frame (TIFF); references found by name unless given")
    p.add_argument("--dark", type=Path, help="dark reference (TIFF)")
    p.add_argument("--white", type=Path, help="white reference (TIFF)")
    p.add_argument("--model", type=Path, help="model file (.safetensors; default: the configured or demo model)")
    p.add_argument("--profile", help="camera profile id (default: from the TIFF metadata)")
    patient = p.add_argument_group("patient and study (typed by the user, never guessed)")
    patient.add_argument("--patient-id", required=True, help="patient id (MRN)")
    patient.add_argument("--patient-name", default="", help="patient name, DICOM form Family^Given")
    patient.add_argument("--accession", default="", help="accession number of the order")
    patient.add_argument("--study-uid", default="", help="Study Instance UID from the order (default: a new study)")
    patient.add_argument("--study-id", default="", help="study id")
    patient.add_argument("--study-description", default="", help="study description")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for CAPTURE-SC.dcm and CAPTURE-SEG.dcm")
    p.add_argument("--palette", choices=("thesis", "colourblind"), default="thesis", help="overlay colours")
    p.add_argument("--force", action="store_true", help="export even an 'unusable' capture (the notice says so)")
    p.add_argument("--send", action="store_true", help="also send both objects to the PACS (kept in the outbox if it is down)")
    add_pacs_arguments(p)
    add_ensemble_arguments(p)
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_export_dicom)

    pacs = subparsers.add_parser("pacs", help="the PACS node: test it (C-ECHO), show or send the outbox")
    sub = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    e = sub.add_parser("echo", help="C-ECHO the configured PACS")
    add_pacs_arguments(e)
    e.set_defaults(handler=cmd_pacs_echo)
    o = sub.add_parser("outbox", help="list the objects waiting for the PACS; --send tries them now")
    o.add_argument("--send", action="store_true", help="send every waiting object now (backoff ignored)")
    add_pacs_arguments(o)
    o.set_defaults(handler=cmd_pacs_outbox)


def add_pacs_arguments(p: argparse.ArgumentParser) -> None:
    from remote.pacs.node import ENV_VARS

    g = p.add_argument_group("PACS node (default: env NEUROHSI_PACS_*)")
    g.add_argument("--pacs-ae", dest="pacs_ae_title", metavar="AE", help=f"PACS AE title (env {ENV_VARS['ae_title']})")
    g.add_argument("--pacs-host", metavar="HOST", help=f"PACS host (env {ENV_VARS['host']})")
    g.add_argument("--pacs-port", metavar="PORT", help=f"PACS port (env {ENV_VARS['port']})")
    g.add_argument("--pacs-tls", action="store_true", default=None, help=f"use TLS (env {ENV_VARS['tls']})")
    g.add_argument("--calling-ae", dest="pacs_calling_ae", metavar="AE", help="our AE title (default NEUROHSI)")
    g.add_argument("--pacs-ca-file", metavar="PEM", help=f"CA certificates for TLS (env {ENV_VARS['ca_file']})")


def pacs_node(args: argparse.Namespace):
    """The node of the flags, env ``NEUROHSI_PACS_*`` filling what they leave out."""
    import os

    from remote.pacs.node import ENV_VARS, PacsNode

    flags = {name: getattr(args, f"pacs_{name}", None) for name in ENV_VARS}
    env = {var: value for var, value in os.environ.items() if var in ENV_VARS.values()}
    # flags beat env: drop the env value of every field given on the command line
    env = {var: value for var, value in env.items() if flags.get(_field_of(var)) in (None, "")}
    return PacsNode.from_values(flags, env=env)


def _field_of(var: str) -> str:
    from remote.pacs.node import ENV_VARS

    return next(name for name, v in ENV_VARS.items() if v == var)


def cmd_export_dicom(args: argparse.Namespace) -> int:
    from app.build_info import app_version
    from app.cli.classify_commands import check_classify_args, classify_with_flags
    from app.cli.classify_commands import record_classification
    from core.audit.events import record
    from core.capture.files import capture_id_for
    from core.output.dicom import StudyInfo, build_dicom

    check_classify_args(args)
    study = StudyInfo(args.patient_id, args.patient_name, args.accession, args.study_uid, args.study_id,
                      args.study_description).validated()  # bad patient data fail before any work
    if not args.out.is_dir():
        raise ValueError(f"{args.out}: --out folder does not exist")
    node = pacs_node(args) if args.send else None
    result = classify_with_flags(args)
    capture_id = capture_id_for(args.raw)
    record_classification(result, args.raw)
    export = build_dicom(result, study, capture_id=capture_id, force=args.force, palette=args.palette,
                         software_version=app_version())
    sc_path, seg_path = export.write(args.out, stem=capture_id)
    record("exported", format="dicom", capture=capture_id, files=[str(sc_path), str(seg_path)],
           patient_id=study.patient_id, accession=study.accession_number, study_uid=export.study_instance_uid,
           forced=export.forced, model_sha256=result.model.sha256)
    print(f"{sc_path}\n{seg_path}")
    if node is not None:
        from remote.pacs.outbox import Outbox

        outbox = Outbox()
        outbox.add(sc_path, capture=capture_id, kind="SC")
        outbox.add(seg_path, capture=capture_id, kind="SEG")
        report = outbox.flush(node, force=True)
        stream = sys.stderr if report.failed else sys.stdout
        print(f"neurohsi: {report.line(node.label)}", file=stream)
    return 0


def cmd_pacs_echo(args: argparse.Namespace) -> int:
    from remote.pacs.node import echo

    print(echo(pacs_node(args)))
    return 0


def cmd_pacs_outbox(args: argparse.Namespace) -> int:
    import time

    from core.errors import escape_controls
    from remote.pacs.outbox import Outbox

    outbox = Outbox()
    if args.send:
        node = pacs_node(args)
        report = outbox.flush(node, force=True)
        print(f"neurohsi: {report.line(node.label)}", file=sys.stderr if report.failed else sys.stdout)
        return 0
    items = outbox.items()
    now = time.time()
    for item in items:
        wait = max(0.0, item.next_try_at - now)
        state = f"try {item.attempts + 1} in {wait:.0f} s" if item.attempts else "not tried yet"
        error = f" - last: {escape_controls(item.last_error)}" if item.last_error else ""
        print(f"{item.path.name}  {item.kind or '?':3}  {item.capture or '-'}  {state}{error}")
    print(f"{len(items)} object(s) waiting in {outbox.folder}")
    return 0
