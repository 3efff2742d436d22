"""``neurohsi cloud`` end to end against Azurite: demo-data -> upload -> train (local) -> status -> fetch -> classify."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.azurite import connection_string, started_azurite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def azurite_cli(tmp_path_factory):
    yield from started_azurite(tmp_path_factory.mktemp("azurite-cli"))


@pytest.fixture
def cli(azurite_cli, tmp_path):
    env = dict(os.environ)
    env.update(
        NEUROHSI_STORAGE_CONNECTION_STRING=azurite_cli.connection_string,
        NEUROHSI_CONTAINER=f"cli{uuid.uuid4().hex[:12]}",
        NEUROHSI_HOME=str(tmp_path / "home"),
        QT_QPA_PLATFORM="offscreen",
    )

    def run(*args, check=True, timeout=180, **overrides):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli.main", *map(str, args)],
            cwd=ROOT, env={**env, **overrides}, capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"neurohsi {' '.join(map(str, args))} failed:\n{result.stderr}")
        return result

    return run


def test_upload_train_fetch_classify(cli, tmp_path):
    data = tmp_path / "demo"
    cli("demo-data", data, "--small", "--captures", "3")

    up = cli("cloud", "upload", data, "--name", "demo")
    upload = json.loads(up.stdout)
    assert upload["dataset"] == "demo" and upload["files"] == 15 and upload["bytes"] > 0
    assert "upload" in up.stderr  # progress bar on stderr
    again = json.loads(cli("cloud", "upload", data, "--name", "demo").stdout)
    assert again["files_already_there"] == 15 and again["bytes_sent"] == 0

    [listed] = json.loads(cli("cloud", "datasets").stdout)
    assert listed["name"] == "demo" and len(listed["capture_ids"]) == 3 and listed["complete"]

    held_out = listed["capture_ids"][-1]
    submitted = json.loads(
        cli("cloud", "train", "--backend", "local", "--dataset", "demo", "--test-capture", held_out,
            "--epochs", "2", "--no-cv", "--model-name", "demo-net", "--model-kind", "spectral",
            "--balance", "loss").stdout
    )
    job = submitted["job_id"]
    assert submitted["status"] in {"Queued", "Preparing", "Running"}

    status = json.loads(cli("cloud", "status", job, "--wait", "--timeout", "150").stdout)
    assert status["status"] == "Completed", cli("cloud", "logs", job).stdout
    assert status["progress"]["epochs_done"] == 2
    assert status["metrics"]["held_out"]["capture_ids"] == [held_out]
    assert status["model"]["name"] == "demo-net"
    logs = cli("cloud", "logs", job, "--tail", "5")
    assert "status: Completed" in logs.stdout
    followed = cli("cloud", "logs", job, "--follow")  # a finished job: its whole log, exit 0
    assert followed.returncode == 0 and followed.stdout.endswith(logs.stdout)
    # the metrics line comes from the job's MLflow run, the same reader as status and the dialog
    last = status["progress"]["last_epoch"]
    assert f"metrics: 2 epochs logged; last epoch 2: loss {last['loss']:.4f}" in logs.stderr

    [row] = json.loads(cli("cloud", "registry", "demo-net", "--backend", "local").stdout)  # the local registry
    assert row["version"] == job and row["profile"] and len(row["dataset_sha256"]) == 64
    assert row["held_out_oacc"] == f"{status['metrics']['held_out']['overall']['oacc']:.4f}"
    models = json.loads(cli("cloud", "models").stdout)
    assert [(m["name"], m["version"]) for m in models] == [("demo-net", job)]

    model = tmp_path / "fetched.safetensors"
    fetched = json.loads(cli("cloud", "fetch", job, "-o", model).stdout)
    assert Path(fetched["model"]) == model and model.is_file()
    # the model records which uploaded dataset it was trained on (the manifest's identity)
    import hashlib

    from core.dataset.check import manifest_sha256
    from core.model.files import load_model

    files = [{"path": f"{p.parent.name}/{p.name}", "size": p.stat().st_size,
              "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in data.glob("*/*") if p.is_file()]
    info = load_model(model).info
    assert info.training["dataset_sha256"] == manifest_sha256({"files": files})
    # the job trained what was asked: the recommended model for real tissue, not the default Conv2DNet
    assert (info.model_kind, info.architecture) == ("spectral", "SpectralNet")
    assert info.training["hyper_parameters"]["balance"] == "loss"

    raw = data / held_out / "raw.tif"
    out = cli("classify", raw, "--dark", data / held_out / "dark.tif", "--white", data / held_out / "white.tif",
              "--model", model, "-o", tmp_path / "map.png", "--json")
    result = json.loads(out.stdout)
    assert (tmp_path / "map.png").is_file()
    assert "demo-net" in json.dumps(result)


def test_wrong_key_is_one_line_without_the_key(cli, azurite_cli, tmp_path):
    wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    bad = connection_string(azurite_cli.port, key=wrong_key)
    result = cli("cloud", "datasets", check=False, NEUROHSI_STORAGE_CONNECTION_STRING=bad)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurohsi: error: ") and "refused the credentials" in lines[0]
    assert wrong_key not in result.stderr and wrong_key not in result.stdout


def test_unknown_job_and_missing_storage_are_one_line(cli, tmp_path):
    result = cli("cloud", "status", "no-such-job", check=False)
    assert result.returncode == 2 and "no local job 'no-such-job'" in result.stderr
    assert "Traceback" not in result.stderr
    result = cli("cloud", "models", check=False, NEUROHSI_STORAGE_CONNECTION_STRING="")
    assert result.returncode == 2 and "no blob storage configured" in result.stderr
    result = cli("cloud", "train", "--backend", "azureml", "--dataset", "demo", check=False)
    assert result.returncode == 2 and "--subscription-id" in result.stderr


def test_secret_set_reads_the_value_from_stdin(memory_keyring, monkeypatch, capsys):
    import io

    from app.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO("endpoint-key-from-stdin\n"))
    assert main(["cloud", "secret", "set", "scoring-endpoint-key"]) == 0
    assert memory_keyring.store[("neurohsi", "scoring-endpoint-key")] == "endpoint-key-from-stdin"
    assert "endpoint-key-from-stdin" not in capsys.readouterr().out
    assert main(["cloud", "secret", "delete", "scoring-endpoint-key"]) == 0
    assert ("neurohsi", "scoring-endpoint-key") not in memory_keyring.store


def test_upload_refuses_a_truncated_white_reference_before_sending_anything(cli, tmp_path):
    data = tmp_path / "demo-bad"
    cli("demo-data", data, "--small", "--captures", "2")
    white = sorted(data.glob("*/white.tif"))[1]
    white.write_bytes(white.read_bytes()[:-300])  # header intact: only a full decode notices
    result = cli("cloud", "upload", data, "--name", "bad", check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("neurohsi: error: ") and str(white) in lines[-1] and "Traceback" not in result.stderr
    listed = cli("cloud", "datasets", check=False)  # nothing uploaded: the container was never even created
    assert "does not exist" in listed.stderr or json.loads(listed.stdout) == []
