"""``neurohsi classify``: raw triplet -> label map, probabilities, overlay; locally or on a scoring endpoint."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core import defaults


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classify",
        help="classify every pixel of a capture (label map, probabilities, overlay)",
        description="Classify a raw capture with a Conv2DNet model, locally or on a scoring endpoint. "
        "Research use only - not for diagnostic use.",
    )
    p.add_argument("raw", type=Path, help="raw frame (TIFF; references found by name unless given), or a preprocessed "
                   "cube (.mat with preProcessedImage, or .npz from neurohsi preprocess; no references)")
    p.add_argument("--dark", type=Path, help="dark reference (TIFF)")
    p.add_argument("--white", type=Path, help="white reference (TIFF)")
    p.add_argument("--model", type=Path, help="model file (.safetensors; default: the installed model, "
                                              "see `neurohsi model current`, else the demo model)")
    p.add_argument(
        "--profile", help="camera profile id for local classification (default: from the TIFF metadata, else thesis-sm5x5-nir)"
    )
    p.add_argument("-o", "--output", type=Path, metavar="MAP.png", help="colour label map (palette PNG of class ids)")
    p.add_argument("--overlay", type=Path, metavar="OVERLAY.png", help="map over the synthetic RGB, with legend")
    p.add_argument("--npz", type=Path, metavar="OUT.npz", help="labels (uint8 HxW), probabilities (float32 HxWxC), class_ids")
    p.add_argument("--palette", choices=("thesis", "colourblind"), default="thesis", help="class colours (default: thesis)")
    p.add_argument("--json", action="store_true", help="print timings, model identity, quality and out-of-distribution share as JSON")
    p.add_argument(
        "--force", action="store_true",
        help="make the map even when the capture's quality is 'unusable' (its exports are watermarked)",
    )
    add_ensemble_arguments(p)
    add_remote_arguments(p)
    p.set_defaults(handler=cmd_classify)


def add_ensemble_arguments(p: argparse.ArgumentParser) -> None:
    """--ensemble and --uncertain-threshold, for every command that classifies a capture locally."""
    p.add_argument(
        "--ensemble", action="store_true",
        help="classify with the model file's ensemble (the outer-fold models double cross-validation kept): "
        "about one extra map time per member",
    )
    p.add_argument(
        "--uncertain-threshold", type=float, default=None, metavar="U",
        help="flag pixels whose predictive uncertainty (normalised entropy, 0..1) exceeds U; "
        "counted in --json (uncertain_fraction); default: the product's default "
        "(core.model.uncertainty)",
    )


def add_remote_arguments(p: argparse.ArgumentParser) -> None:
    """--endpoint, --key-env, --fallback-local, --deadline, --deployment (``classify`` and ``watch``)."""
    remote = p.add_argument_group("remote scoring")
    remote.add_argument("--endpoint", metavar="URL", help="score on this endpoint instead of locally")
    remote.add_argument("--key-env", metavar="VAR", help="environment variable holding the endpoint key")
    remote.add_argument("--fallback-local", action="store_true", help="classify locally when the endpoint fails")
    remote.add_argument(
        "--deadline", type=float, default=defaults.REMOTE_DEADLINE_S, metavar="SECONDS",
        help=f"give up on the endpoint after this long, retries included (default {defaults.REMOTE_DEADLINE_S:g})",
    )
    remote.add_argument(
        "--deployment", metavar="NAME", help="Azure ML deployment to route to (azureml-model-deployment header)"
    )
    remote.add_argument(
        "--endpoint-auth", choices=("key", "entra"), default="key",
        help="key (--key-env) or entra: a Microsoft Entra ID token for an aad_token endpoint, from the "
             "browser sign-in of NeuroHSI's app (NEUROHSI_AZUREML_CLIENT_ID) or the managed identity",
    )


def check_reference_and_remote_args(args: argparse.Namespace) -> None:
    """The --dark/--white pair and the remote options, one line each (``classify`` and ``watch``)."""
    if (args.dark is None) != (args.white is None):
        raise ValueError("give both --dark and --white, or neither")
    if args.endpoint is None and (args.key_env or args.fallback_local):
        raise ValueError("--key-env and --fallback-local need --endpoint")
    if args.key_env and not os.environ.get(args.key_env):
        raise ValueError(f"environment variable {args.key_env} (--key-env) is not set")
    if args.endpoint is None and args.deployment:
        raise ValueError("--deployment needs --endpoint")
    if args.endpoint_auth == "entra" and (args.endpoint is None or args.key_env):
        raise ValueError("--endpoint-auth entra needs --endpoint and no --key-env")
    if not args.deadline > 0:
        raise ValueError(f"--deadline must be a positive number of seconds, got {args.deadline:g}")


def endpoint_target(args: argparse.Namespace):
    """The :class:`remote.remote_or_local.RemoteTarget` of --endpoint / --key-env."""
    try:
        from remote.remote_or_local import RemoteTarget
    except ImportError as exc:  # a slimmed install without the remote package
        raise ValueError(f"remote scoring is not available in this installation ({exc})") from None
    token_auth = None
    if args.endpoint_auth == "entra":
        from remote.cloud_config import resolve, scoring_credential
        from remote.endpoint_auth import EntraTokenAuth

        token_auth = EntraTokenAuth(scoring_credential(resolve()))
    return RemoteTarget(args.endpoint, os.environ[args.key_env] if args.key_env else None, args.deployment,
                        token_auth=token_auth)


def _check_args(args: argparse.Namespace) -> None:
    check_classify_args(args)
    for option, path in (("-o", args.output), ("--overlay", args.overlay), ("--npz", args.npz)):
        if path is not None and not path.parent.is_dir():
            raise ValueError(f"{path}: folder for {option} does not exist")


def check_classify_args(args: argparse.Namespace) -> None:
    """References, remote and ensemble options of every command that classifies one capture."""
    check_reference_and_remote_args(args)
    if args.ensemble and args.endpoint is not None:
        raise ValueError("--ensemble classifies locally with the model file's ensemble: drop --endpoint")
    if args.uncertain_threshold is not None:
        from core.model.uncertainty import check_threshold

        check_threshold(args.uncertain_threshold)


def _classify(args: argparse.Namespace):
    """Read the triplet, classify it remotely or locally (:mod:`remote.remote_or_local`), else locally.

    "total" is the wall clock from before reading to the map.
    """
    import time
    from dataclasses import replace

    from core.capture.files import load_capture
    from core.model.inference import classify_files
    from core.model.choice import resolve_model

    from core.model.inference import is_cube_file

    if is_cube_file(args.raw) and args.endpoint is not None:
        raise ValueError(f"{args.raw}: a preprocessed cube is classified locally; drop --endpoint")
    if args.endpoint is None:
        model = resolve_model(args.model)  # a bad model fails before the capture is read
        if args.ensemble:
            from core.model.ensemble import with_ensemble

            model = with_ensemble(model)
        return classify_files(args.raw, model, dark=args.dark, white=args.white, profile_name=args.profile)
    start = time.perf_counter()
    capture = load_capture(args.raw, args.dark, args.white)
    read = time.perf_counter() - start
    result = _classify_remote_or_local(args, capture, lambda: resolve_model(args.model))
    return replace(result, timings_s={**result.timings_s, "read": read, "total": time.perf_counter() - start})


def classify_with_flags(args: argparse.Namespace):
    """:func:`_classify`, then the uncertainty flag at ``--uncertain-threshold`` when one was given."""
    result = _classify(args)
    if args.uncertain_threshold is not None:
        from core.model.uncertainty import with_uncertainty

        result = with_uncertainty(result, args.uncertain_threshold)
    return result


def _classify_remote_or_local(args: argparse.Namespace, capture, resolver):
    target = endpoint_target(args)
    from remote.remote_or_local import RemotePolicy, classify_remote_or_local
    from remote.scoring_client import RemoteError

    try:
        outcome = classify_remote_or_local(
            capture,
            model_resolver=resolver,
            endpoint=target,
            fallback_local=args.fallback_local,
            policy=RemotePolicy(deadline_s=args.deadline),
            profile_name=args.profile,
        )
    except (RemoteError, OSError) as exc:
        raise _remote_failure(args.endpoint, exc) from None
    if outcome.fallback_reason is not None:
        print(f"neurohsi: remote scoring failed ({outcome.fallback_reason}); classified locally", file=sys.stderr)
    return outcome.result


def cmd_classify(args: argparse.Namespace) -> int:
    _check_args(args)
    result = classify_with_flags(args)
    from core.capture.files import capture_id_for
    from core.capture.quality import require_usable

    record_classification(result, args.raw)
    require_usable(result.quality, force=args.force, name=str(args.raw))  # before any file is written
    written = write_outputs(
        result, output=args.output, overlay=args.overlay, npz=args.npz, palette=args.palette,
        capture_id=capture_id_for(args.raw),
    )
    if written:
        from core.audit.events import record

        record("exported", format="files", capture=capture_id_for(args.raw), files=sorted(written.values()),
               model_sha256=result.model.sha256)
    summary = summarise(result, written)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from core.errors import escape_controls

        shares = ", ".join(f"{name} {pct:.1f}%" for name, pct in summary["classes_percent"].items())
        # Every part may come from a file or an endpoint (a model named with ANSI codes): escape the line.
        print(escape_controls(
            f"{args.raw}: {result.labels.shape[0]}x{result.labels.shape[1]} px classified by {result.model.label} "
            f"({result.source}) in {summary['timings_ms']['total']:.0f} ms: {shares}"
            if "total" in summary["timings_ms"]
            else f"{args.raw}: classified by {result.model.label}: {shares}"
        ))
    return 0


def record_classification(result, raw) -> None:
    """Audit: the capture was opened and classified (model, quality, shares, local or remote)."""
    from core.audit.events import classification_details, record
    from core.capture.files import capture_id_for

    record("capture_opened", capture=capture_id_for(raw), path=str(raw))
    record("classified", **classification_details(result, capture=capture_id_for(raw)))


def _remote_failure(endpoint: str, exc: BaseException) -> ValueError:
    from core.errors import one_line

    return ValueError(f"remote scoring at {endpoint} failed: {one_line(exc)} (use --fallback-local to classify locally)")


def write_outputs(
    result, *, output=None, overlay=None, npz=None, palette: str = "thesis", capture_id: str = "capture"
) -> dict[str, str]:
    """Write the requested files for a :class:`core.model.inference.ClassificationResult`; returns kind -> path."""
    from core.labels.maps import write_label_png
    from core.output.export import write_npz, write_overlay_png
    from core.output.legend import flag_layers

    quality = getattr(result, "quality", None)
    written = {}
    if output is not None:
        # Pixel values are class ids: an unusable capture shown anyway is marked in a PNG text chunk.
        text = {"NeuroHSI-quality": f"{quality.status}: {quality.reason}"} if quality is not None else None
        write_label_png(output, result.labels, palette=palette, text=text)
        written["map"] = str(output)
    if overlay is not None:
        write_overlay_png(
            overlay, result.rgb, result.labels, model=result.model, source=result.source,
            classified_at=result.classified_at, capture_id=capture_id, palette=palette,
            quality=quality, flags=flag_layers(result),
        )
        written["overlay"] = str(overlay)
    if npz is not None:
        write_npz(npz, result, capture_id=capture_id)
        written["npz"] = str(npz)
    return written


def summarise(result, written: dict[str, str]) -> dict:
    """JSON-ready summary: model identity, where it ran, shape, class shares (%), timings (ms), files."""
    from core.model.trust import summary as trust_summary
    from core.output.legend import flag_layers, legend_rows

    info = result.model
    # The legend model the screen and the overlay use: class shares exclude flagged pixels.
    rows = legend_rows(result.labels, info.class_ids, info.class_names, flags=flag_layers(result))
    return {
        "model": {"name": info.name, "version": info.version, "sha256": info.sha256, "profile_id": info.profile_id},
        "source": result.source,
        "classified_at": result.classified_at,
        "shape": list(result.labels.shape),
        # Every legend row, flags ("not measured", "out of distribution", "uncertain") included: adds to 100.
        "classes_percent": {row.name: round(100.0 * row.fraction, 2) for row in rows},
        "timings_ms": {k: round(1000 * v, 2) for k, v in result.timings_s.items()},
        "outputs": written,
        **trust_summary(result),
        "uncertain_fraction": None if getattr(result, "uncertain_fraction", None) is None
        else round(float(result.uncertain_fraction), 6),
        "camera_profile": _camera_profile(result),
        "notice": "Research use only - not for diagnostic use",
    }


def _camera_profile(result) -> dict | None:
    """The calibration the capture was read with (local results; a remote one reports its profile id only)."""
    cube = getattr(result, "cube", None)
    if cube is None:
        return None
    return {
        "id": cube.profile_id,
        "geometry_source": cube.geometry_source,
        "wavelengths_nominal": cube.wavelengths_nominal,
        "wavelengths_nm": None if cube.wavelengths_nm is None else [round(float(w), 3) for w in cube.wavelengths_nm],
    }
