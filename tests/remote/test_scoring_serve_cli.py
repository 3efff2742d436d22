"""``neurohsi serve``: prints the URL, serves on 127.0.0.1 only, one-line errors for bad options."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from remote.scoring_client import RemoteError, ScoringClient
from tests.support.scoring import listening_addresses, profile_id_of, save_random_model, small_capture


def _neurohsi(*args: str, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        **kwargs,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)



def _wait_until_serving(process, client: ScoringClient, timeout_s: float = 60.0) -> None:
    """Ping ``client`` until the ``serve`` process answers (it must not exit meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return
        except RemoteError:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, f"serve did not answer within {timeout_s:g} s"
            time.sleep(0.2)

def test_serve_prints_url_and_serves_with_key_on_loopback(tmp_path):
    capture = small_capture(0)
    model = tmp_path / "m.safetensors"
    save_random_model(model, profile_id=profile_id_of(capture))
    process = _neurohsi("serve", "--model", str(model), "--port", "0", "--key-env", "TEST_SCORING_KEY",
                        env={"TEST_SCORING_KEY": "s3cret"})
    try:
        first = process.stdout.readline().strip()
        assert first.startswith("NeuroHSI scoring service: http://127.0.0.1:"), first
        url = first.split(": ", 1)[1]
        client = ScoringClient(url, key="s3cret", retries=0, timeout=(1, 30))
        _wait_until_serving(process, client)
        assert client.classify_capture(capture).labels.shape == (24, 32)
        with pytest.raises(RemoteError, match="endpoint key rejected"):
            ScoringClient(url, key="wrong").ping()
        port = int(url.split(":")[2].split("/")[0])
        addresses = listening_addresses(port)
        assert addresses and all(ip == "127.0.0.1" for ip, _ in addresses), addresses
        # The key never appears on a command line.
        import psutil

        for proc in [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]:
            assert "s3cret" not in " ".join(proc.cmdline())
    finally:
        _stop(process)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "missing.safetensors"], "missing.safetensors: model file not found"),
        (["--key-env", "NEUROHSI_TEST_UNSET_VARIABLE"], "NEUROHSI_TEST_UNSET_VARIABLE"),
    ],
)
def test_serve_bad_options_give_one_line(tmp_path, args, message):
    if "--model" not in args:
        model = tmp_path / "m.safetensors"
        save_random_model(model, profile_id="thesis-sm5x5-nir")
        args = ["--model", str(model), *args]
    process = _neurohsi("serve", *args, cwd=tmp_path)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurohsi: error:") and message in lines[0], output


def test_serve_needs_a_model_and_demo_only_when_named(tmp_path):
    process = _neurohsi("serve", "--port", "0", cwd=tmp_path)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        _stop(process)
    assert process.returncode == 2
    assert "--model" in output and "NeuroHSI scoring service" not in output


def test_busy_port_is_one_line_before_any_banner(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        process = _neurohsi("serve", "--model", "demo", "--port", str(port), cwd=tmp_path)
        try:
            output, _ = process.communicate(timeout=60)
        finally:
            _stop(process)
    assert process.returncode == 2
    assert output.strip() == f"neurohsi: error: port {port} is in use (choose another with --port, or --port 0)", output


def test_serve_ignores_config_files_in_the_working_folder(tmp_path):
    marker = tmp_path / "gunicorn-conf-was-read"
    # If gunicorn read this file it would leave a marker and bind every interface;
    # if the inference server read this config.json it would fail to parse it.
    (tmp_path / "gunicorn.conf.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nbind = ['0.0.0.0:0']\nworkers = 3\n"
    )
    (tmp_path / "config.json").write_text('{"SCORING_TIMEOUT_MS": "not a number", ')
    process = _neurohsi("serve", "--model", "demo", "--port", "0", cwd=tmp_path)
    try:
        first = process.stdout.readline().strip()
        assert first.startswith("NeuroHSI scoring service: http://127.0.0.1:"), first
        url = first.split(": ", 1)[1]
        client = ScoringClient(url, retries=0, timeout=(1, 30), deadline_s=None)
        _wait_until_serving(process, client)
        assert client.service_info["model"]["name"]  # the demo model, named explicitly
        port = int(url.split(":")[2].split("/")[0])
        addresses = listening_addresses(port)
        assert addresses and all(ip == "127.0.0.1" for ip, _ in addresses), addresses
        assert not marker.exists()
    finally:
        _stop(process)
