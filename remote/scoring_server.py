"""Run the real ``azureml-inference-server-http`` with the NeuroHSI entry script on 127.0.0.1.

``python -m remote.scoring_server --port P [--model M] [--key-env VAR]`` is
``azmlinfsrv --entry_script remote/scoring_entry.py --port P`` with one difference
that matters on a hospital network: the server binds 127.0.0.1 only. The package
binds ``constants.DEFAULT_HOST`` (0.0.0.0) and its ``amlserver`` module copies that
constant when imported, so we set it before the import and check the copy.

:func:`local_scoring_server` starts it in a subprocess on a free loopback port,
waits until it answers, yields the scoring URL and always stops it (the whole
process group: the gunicorn master and its workers).

The endpoint key never appears on a command line (where ``ps`` shows it): it is
passed through the environment, ``NEUROHSI_SCORING_KEY``.

Configuration is explicit only: gunicorn would read ``./gunicorn.conf.py`` and the
inference server ``config.json`` from the working folder (and add that folder to
``sys.path``). The launcher names its own gunicorn settings
(``--config python:remote.scoring_gunicorn``: thread workers with read deadlines) and
an empty server config (``remote/scoring_server_config.json``), and runs from the
checkout's root, so files in the folder ``neurohsi serve`` was started from are ignored.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from core.cpu import passive_openmp, reuse_freed_memory

LOOPBACK = "127.0.0.1"
ENTRY_SCRIPT = Path(__file__).resolve().with_name("scoring_entry.py")
SERVER_CONFIG = Path(__file__).resolve().with_name("scoring_server_config.json")
GUNICORN_CONFIG = "python:remote.scoring_gunicorn"
_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 5001
# Variables through which gunicorn or the inference server could be told to bind elsewhere
# or to read configuration from somewhere we did not choose.
_BIND_OVERRIDES = ("GUNICORN_CMD_ARGS", "SEPERATE_HEALTH_ENDPOINT", "HEALTH_PORT", "AZUREML_CONFIG_FILE", "AML_APP_ROOT")


class PortInUseError(ValueError):
    """The port is taken on 127.0.0.1."""


def check_port_free(port: int) -> None:
    """``PortInUseError`` ("port P is in use") when 127.0.0.1:``port`` cannot be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # gunicorn binds with SO_REUSEADDR too: a port in TIME_WAIT is free for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise PortInUseError(f"port {port} is in use (choose another with --port, or --port 0)") from None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def scoring_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/score"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m remote.scoring_server",
        description="Serve the NeuroHSI scoring entry script on 127.0.0.1 with azureml-inference-server-http.",
    )
    parser.add_argument("--entry", default=str(ENTRY_SCRIPT), help="entry script (default: remote/scoring_entry.py)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument(
        "--model", help="model file (.safetensors) or 'demo'; default: NEUROHSI_MODEL_PATH or AZUREML_MODEL_DIR (required)"
    )
    parser.add_argument("--key-env", metavar="VAR", help="environment variable holding the endpoint key")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes (default 1)")
    parser.add_argument("--max-request-mb", type=float, help="request-size limit in MB (default 64)")
    return parser


def configure_environment(args: argparse.Namespace, environ: dict | None = None) -> None:
    """Translate launcher options into the entry script's environment; ``ValueError`` on bad options."""
    environ = os.environ if environ is None else environ
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be 1..65535, got {args.port}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not Path(args.entry).is_file():
        raise ValueError(f"{args.entry}: entry script not found")
    if args.model == "demo":
        from resources import DEMO_MODEL_PATH

        args.model = str(DEMO_MODEL_PATH)
    if args.model:
        model = Path(args.model).resolve()
        if not model.is_file():
            raise ValueError(f"{args.model}: model file not found")
        environ["NEUROHSI_MODEL_PATH"] = str(model)
    if args.key_env:
        key = environ.get(args.key_env)
        if not key:
            raise ValueError(f"--key-env {args.key_env}: that environment variable is not set or empty")
        environ["NEUROHSI_SCORING_KEY"] = key
    if args.max_request_mb is not None:
        if args.max_request_mb <= 0:
            raise ValueError(f"--max-request-mb must be positive, got {args.max_request_mb}")
        environ["NEUROHSI_MAX_REQUEST_MB"] = str(args.max_request_mb)
    for name in _BIND_OVERRIDES:
        environ.pop(name, None)
    passive_openmp(environ)
    reuse_freed_memory(environ)
    gunicorn_args = f"--config {GUNICORN_CONFIG}"
    if _gunicorn_has_setting("control_socket_disable"):
        # gunicorn >= 25 opens a control socket at one fixed path per user; two local
        # servers (tests, a GUI beside a CLI) would fight over it and we never use it.
        gunicorn_args += " --no-control-socket"
    environ["GUNICORN_CMD_ARGS"] = gunicorn_args
    environ["AZUREML_CONFIG_FILE"] = str(SERVER_CONFIG)
    environ["AML_APP_ROOT"] = str(ENTRY_SCRIPT.parent)
    # gunicorn imports remote.scoring_gunicorn in the master: this checkout must be importable.
    existing = environ.get("PYTHONPATH")
    if str(_ROOT) not in (existing or "").split(os.pathsep):
        environ["PYTHONPATH"] = str(_ROOT) if not existing else f"{_ROOT}{os.pathsep}{existing}"


def _gunicorn_has_setting(name: str) -> bool:
    from gunicorn import config

    return any(getattr(setting, "name", None) == name for setting in config.KNOWN_SETTINGS)


def serve(args: argparse.Namespace) -> None:
    """Run the inference server in this process until it is stopped (never returns normally)."""
    configure_environment(args)
    check_port_free(args.port)
    # gunicorn adds its working folder to sys.path: run from the checkout, not wherever we were started.
    os.chdir(_ROOT)
    if str(_ROOT) not in sys.path:
        sys.path.insert(0, str(_ROOT))
    from azureml_inference_server_http import constants

    constants.DEFAULT_HOST = LOOPBACK
    from azureml_inference_server_http import amlserver

    if amlserver.DEFAULT_HOST != LOOPBACK:  # imported earlier with the old constant: refuse to bind 0.0.0.0
        raise RuntimeError("azureml_inference_server_http.amlserver was imported before the bind host was set")
    sys.argv = [
        "azmlinfsrv",
        "--entry_script",
        str(Path(args.entry).resolve()),
        "--port",
        str(args.port),
        "--worker_count",
        str(args.workers),
    ]
    amlserver.run()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        serve(args)
    except (ValueError, RuntimeError) as exc:
        print(f"scoring_server: error: {exc}", file=sys.stderr)
        return 2
    return 0


class ScoringServerError(RuntimeError):
    """The local scoring server did not start; the message carries the end of its log."""


@contextlib.contextmanager
def local_scoring_server(
    model_path: str | Path,
    *,
    key: str | None = None,
    port: int = 0,
    env: dict[str, str] | None = None,
    workers: int = 1,
    max_request_mb: float | None = None,
    startup_timeout_s: float = 90.0,
) -> Iterator[str]:
    """Start the scoring service on 127.0.0.1 in a subprocess; yield its scoring URL; always stop it.

    ``port=0`` picks a free port (retried when another process takes it first).
    ``key`` is handed over through the environment. ``env`` adds variables (e.g.
    ``NEUROHSI_MAX_REQUEST_MB``). Raises :class:`ScoringServerError` with the end of
    the server log when it exits or does not answer within ``startup_timeout_s``.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: model file not found")
    child_env = {**os.environ, **(env or {})}
    for name in ("NEUROHSI_SCORING_KEY", *_BIND_OVERRIDES):
        child_env.pop(name, None)
    if key is not None:
        child_env["NEUROHSI_SCORING_KEY"] = key
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with tempfile.TemporaryDirectory(prefix="neurohsi-scoring-") as workdir:
        log_path = Path(workdir) / "server.log"
        attempts = 3 if port == 0 else 1
        for attempt in range(attempts):
            chosen = port or free_port()
            command = [sys.executable, "-m", "remote.scoring_server", "--port", str(chosen), "--model", str(model_path)]
            command += ["--workers", str(workers)]
            if max_request_mb is not None:
                command += ["--max-request-mb", str(max_request_mb)]
            with open(log_path, "wb") as log:
                # cwd: the server adds its working folder to sys.path and reads config.json from it;
                # a private empty folder keeps it from picking up stray files.
                process = subprocess.Popen(
                    command,
                    cwd=workdir,
                    env={**child_env, "PYTHONPATH": _pythonpath(child_env)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                _wait_ready(process, chosen, startup_timeout_s, log_path)
            except ScoringServerError:
                _stop(process)
                if attempt + 1 < attempts and ("Address already in use" in _tail(log_path) or "is in use" in _tail(log_path)):
                    continue
                raise
            except BaseException:
                _stop(process)
                raise
            break
        try:
            yield scoring_url(chosen)
        finally:
            _stop(process)


def _pythonpath(environ: dict) -> str:
    # The child runs from a temporary folder: make sure it imports this checkout's packages.
    root = str(Path(__file__).resolve().parent.parent)
    existing = environ.get("PYTHONPATH")
    return root if not existing else f"{root}{os.pathsep}{existing}"


def _wait_ready(process: subprocess.Popen, port: int, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    liveness = f"http://{LOOPBACK}:{port}/"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScoringServerError(
                f"scoring server exited with code {process.returncode} during start-up:\n{_tail(log_path)}"
            )
        try:
            # Liveness answers only once a worker has run init() (the model is loaded).
            if requests.get(liveness, timeout=(0.5, 2.0)).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise ScoringServerError(f"scoring server did not answer within {timeout_s:.0f} s:\n{_tail(log_path)}")


def _tail(log_path: Path, limit: int = 4000) -> str:
    try:
        return log_path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's whole process group: SIGTERM (graceful), then SIGKILL after 10 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            # SIGTERM is gunicorn's graceful stop: listeners close at once, requests in
            # flight finish (SIGINT would abort them with a 500).
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    # Workers may outlive the master for a moment; the group is ours alone (start_new_session).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
