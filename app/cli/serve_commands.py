"""``neurohsi serve``: run the scoring service locally on 127.0.0.1 (real azureml-inference-server-http)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the scoring service on 127.0.0.1",
        description="Serve a model with the NeuroHSI scoring entry script under azureml-inference-server-http, "
        "bound to 127.0.0.1 only. Prints the scoring URL; Ctrl+C stops it. Configuration files in the "
        "current folder (gunicorn.conf.py, config.json) are ignored.",
    )
    p.add_argument("--model", help="model file (.safetensors), or 'demo' for the bundled demo model "
                                   "(default: the installed model, see `neurohsi model current`)")
    p.add_argument("--port", type=int, default=5001, help="port on 127.0.0.1 (default 5001; 0 picks a free one)")
    p.add_argument("--key-env", metavar="VAR", help="environment variable holding the endpoint key to require")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1; each has many connection threads)")
    p.add_argument("--max-request-mb", type=float, help="request-size limit in MB (default 64)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from core.model.choice import resolve_model
    from remote.scoring_server import ENTRY_SCRIPT, check_port_free, free_port, scoring_url

    # The one model rule and messages (--model, else the installed model); the demo model only
    # when named. Fail here with one line
    # rather than in a worker with a server log.
    demo = args.model == "demo"
    model = resolve_model(None if demo else args.model, allow_demo=demo)
    args.model = model.path
    info = model.info
    _check_profile_exists(info, model.path)
    if args.key_env and not os.environ.get(args.key_env):
        raise ValueError(f"--key-env {args.key_env}: that environment variable is not set or empty")
    if args.port == 0:
        args.port = free_port()
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    check_port_free(args.port)  # before the banner: a busy port is one line, not a URL and a log dump
    key_note = f"key required (from ${args.key_env})" if args.key_env else "no key"
    print(f"NeuroHSI scoring service: {scoring_url(args.port)}", flush=True)
    print(f"model {info.label}; {key_note}; Ctrl+C to stop", flush=True)
    command = [sys.executable, "-m", "remote.scoring_server", "--entry", str(ENTRY_SCRIPT), "--port", str(args.port)]
    command += ["--model", str(Path(args.model).resolve()), "--workers", str(args.workers)]
    if args.key_env:
        command += ["--key-env", args.key_env]  # the key itself stays in the environment
    if args.max_request_mb is not None:
        command += ["--max-request-mb", str(args.max_request_mb)]
    # Replace this process with a fresh interpreter: torch, loaded above to check the
    # model, must not be inherited by the server's forked workers (OpenMP is not fork-safe).
    os.execv(sys.executable, command)
    return 0  # not reached


def _check_profile_exists(info, path) -> None:
    """Refuse a model for a camera profile this NeuroHSI does not have: the service would start,
    answer liveness, and then refuse every capture (a profile from frame metadata is always there)."""
    from core.capture.camera_profiles import list_profiles
    from core.errors import ModelFileError

    if info.profile_id in list_profiles() or info.profile_id.startswith("metadata:"):
        return
    raise ModelFileError(
        path, f"model {info.label} is for camera profile {info.profile_id[:80]!r}, which does not exist here "
        f"(known: {', '.join(list_profiles())}); it could score no capture",
    )
