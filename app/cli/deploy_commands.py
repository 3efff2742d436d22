"""``neurohsi cloud deploy STEP``: ship a new model to an online endpoint safely (:mod:`remote.rollout`).

    neurohsi cloud deploy create  --endpoint neurohsi-scoring --live blue --new green --model conv2dnet:7
    neurohsi cloud deploy smoke   --endpoint neurohsi-scoring --live blue --new green
    neurohsi cloud deploy mirror  ... --percent 10
    neurohsi cloud deploy split   ... --percent 10
    neurohsi cloud deploy promote ...        (or: rollback, at any step)

One step per command, so a person looks at the endpoint's metrics in between. JSON on stdout.
Sign-in as for ``neurohsi cloud train --backend azureml`` (the workspace settings and credential
of :mod:`remote.cloud_config`).
"""
from __future__ import annotations

import argparse


def add_deploy(sub, azureml_options) -> None:
    """Register ``cloud deploy`` on the ``cloud`` sub-command parser ``sub``."""
    from remote.rollout import STEPS

    p = sub.add_parser("deploy", help="safe rollout of a new model: second deployment, smoke request, "
                                      "mirrored then split traffic, promote or roll back")
    p.add_argument("step", choices=STEPS)
    p.add_argument("--endpoint", required=True, help="online endpoint name")
    p.add_argument("--live", required=True, help="the deployment serving now (e.g. blue)")
    p.add_argument("--new", required=True, help="the new deployment (e.g. green)")
    p.add_argument("--model", help="registered model NAME:VERSION (step create)")
    p.add_argument("--percent", type=int, default=0, help="traffic percent (steps mirror, split)")
    p.add_argument("--key-env", metavar="VAR", help="smoke: env variable holding the endpoint key "
                                                     "(default: an Entra ID token, aad_token endpoints)")
    azureml_options(p)
    p.set_defaults(handler=cmd_deploy, backend="azureml")


def cmd_deploy(args: argparse.Namespace) -> int:
    import os

    from app.cli.cloud_commands import _backend, _config, _emit
    from remote.rollout import Rollout, check_name

    check_name(args.endpoint, "endpoint")
    if args.step == "create" and not args.model:
        raise ValueError("deploy create needs --model NAME:VERSION")
    if args.key_env and not os.environ.get(args.key_env):
        raise ValueError(f"environment variable {args.key_env} (--key-env) is not set")
    rollout = Rollout(_backend(args)._ml_client(), args.endpoint, live=args.live, new=args.new)
    if args.step == "create":
        _emit(rollout.create(args.model))
    elif args.step == "smoke":
        _emit(rollout.smoke(_smoke_request(_config(args), os.environ.get(args.key_env) if args.key_env else None)))
    else:
        _emit(rollout.shift(args.step, args.percent))
    return 0


def _smoke_request(config, key: str | None):
    """``request(scoring_uri, deployment)``: the service info and a synthetic capture's map from that deployment."""

    def request(url: str, deployment: str) -> dict:
        from core.capture.synthetic.captures import generate_capture, small_profile
        from remote.cloud_config import scoring_credential
        from remote.endpoint_auth import EntraTokenAuth
        from remote.scoring_client import ScoringClient

        auth = None if key else EntraTokenAuth(scoring_credential(config))
        with ScoringClient(url, key=key, token_auth=auth, deployment=deployment) as client:
            client.ping()
            capture = generate_capture(seed=0, patient="ID99", profile=small_profile(12, 16))
            result = client.classify_capture(capture)
        return {"model": client.service_info.get("model"), "map_shape": list(result.labels.shape)}

    return request
