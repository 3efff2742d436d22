"""Scoring packaging: Azure ML YAML validates offline; image files name the pinned versions and the entry script."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from marshmallow import ValidationError

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging" / "scoring"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize(
    ("name", "kind", "auth"),
    [("endpoint-managed.yml", "ManagedOnlineEndpoint", "aad_token"),
     # Azure: Entra ID token auth is for managed endpoints only.
     ("endpoint-kubernetes.yml", "KubernetesOnlineEndpoint", "key")],
)
def test_endpoints_validate(name, kind, auth):
    from azure.ai.ml import load_online_endpoint

    endpoint = load_online_endpoint(PACKAGING / name)
    assert type(endpoint).__name__ == kind
    assert endpoint.auth_mode == auth


def test_managed_endpoint_and_deployment_state_their_network_access():
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    assert load_online_endpoint(PACKAGING / "endpoint-managed.yml").public_network_access in ("enabled", "disabled")
    deployment = load_online_deployment(PACKAGING / "deployment-managed.yml")
    assert deployment.egress_public_network_access in ("enabled", "disabled")


@pytest.mark.parametrize("name", ["deployment-managed.yml", "deployment-kubernetes.yml"])
def test_no_body_reaches_telemetry_and_no_deprecated_settings(name):
    from azure.ai.ml import load_online_deployment

    deployment = load_online_deployment(PACKAGING / name)
    # azureml-inference-server-http logs every response body to App Insights unless told not to.
    assert deployment.environment_variables["APP_INSIGHTS_LOG_RESPONSE_ENABLED"] == "false"
    assert deployment.environment_variables["AML_MODEL_DC_STORAGE_ENABLED"] == "false"
    assert "max_queue_wait_ms" not in (PACKAGING / name).read_text()  # deprecated by Azure ML
    assert deployment.data_collector is None


def test_server_reads_the_response_logging_switch_we_set(monkeypatch):
    # The switch is the server's own setting name (a typo would leave bodies logged, silently).
    from azureml_inference_server_http.server.config import AMLInferenceServerConfig

    monkeypatch.setenv("APP_INSIGHTS_LOG_RESPONSE_ENABLED", "false")
    assert AMLInferenceServerConfig().app_insights_log_response_enabled is False


def test_both_images_and_environments_install_imagecodecs():
    version = _pins(ROOT / "requirements" / "constraints.txt")["imagecodecs"]
    assert _pins(PACKAGING / "requirements.txt")["imagecodecs"] == version
    assert _pins(PACKAGING / "conda.yml")["imagecodecs"] == version
    train = (ROOT / "packaging" / "azureml" / "Dockerfile.train").read_text()
    installs = [line for line in train.replace("\\\n", " ").splitlines() if "pip install" in line]
    assert any(re.search(r"-c requirements/constraints.txt .*\bimagecodecs\b", line) for line in installs), installs
    # The training environment is built from that Dockerfile.
    env = (ROOT / "packaging" / "azureml" / "train-environment.yml").read_text()
    assert "dockerfile_path: packaging/azureml/Dockerfile.train" in env


@pytest.mark.parametrize(
    ("name", "kind"),
    [("deployment-managed.yml", "ManagedOnlineDeployment"), ("deployment-kubernetes.yml", "KubernetesOnlineDeployment")],
)
def test_deployments_validate_with_probes_limits_and_model(name, kind):
    from azure.ai.ml import load_online_deployment

    deployment = load_online_deployment(PACKAGING / name)
    assert type(deployment).__name__ == kind
    assert deployment.model == "neurohsi-conv2dnet:1"
    assert deployment.instance_type
    assert deployment.request_settings.request_timeout_ms >= 10_000
    assert deployment.request_settings.max_concurrent_requests_per_instance >= 1
    assert deployment.liveness_probe.period and deployment.readiness_probe.period
    routes = deployment.environment.inference_config
    assert routes.scoring_route.path == "/score" and routes.liveness_route.path == "/"
    assert deployment.environment.image.endswith("neurohsi-scoring:0.1.0")
    assert int(deployment.environment_variables["NEUROHSI_MAX_REQUEST_MB"]) >= 40


def test_validator_rejects_a_broken_deployment(tmp_path):
    from azure.ai.ml import load_online_deployment

    text = (PACKAGING / "deployment-kubernetes.yml").read_text()
    broken = tmp_path / "broken.yml"
    broken_text = text.replace("request_timeout_ms: 15000", "request_timeout_ms: soon")
    assert broken_text != text
    broken.write_text(broken_text)
    with pytest.raises(ValidationError):
        load_online_deployment(broken)


def test_image_pins_match_the_tested_versions():
    constraints = _pins(ROOT / "requirements" / "constraints.txt")
    image = _pins(PACKAGING / "requirements.txt")
    conda = _pins(PACKAGING / "conda.yml")
    assert image["azureml-inference-server-http"] == "1.5.1"
    for name, version in image.items():
        assert constraints.get(name) == version, name
        assert conda.get(name) == version, name
    dockerfile = (PACKAGING / "Dockerfile").read_text()
    assert dockerfile.startswith("#")
    assert "torch==2.13.0" in dockerfile and "download.pytorch.org/whl/cpu" in dockerfile
    entry = re.search(r'"--entry_script", "/opt/neurohsi/([^"]+)"', dockerfile).group(1)
    assert (ROOT / entry).is_file()


def test_dockerfile_installs_with_constraints_as_non_root_with_explicit_config():
    dockerfile = (PACKAGING / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if re.match(r"^RUN pip install", line)]
    assert len(installs) == 3
    # Every install of third-party packages is constrained to the tested set; ours is --no-deps.
    assert all("--constraint /tmp/constraints.txt" in line or "--no-deps" in line for line in installs), installs
    assert "COPY requirements/constraints.txt /tmp/constraints.txt" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert 'GUNICORN_CMD_ARGS="--config python:remote.scoring_gunicorn"' in dockerfile
    config = re.search(r"AZUREML_CONFIG_FILE=/opt/neurohsi/(\S+)", dockerfile).group(1)
    assert (ROOT / config).is_file()
    assert "az acr build" in dockerfile
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE).group(1)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.MULTILINE)
    # Pinned by digest, or visibly not yet pinned with the script that pins it.
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base) or (
        base == "python:3.11-slim-bookworm" and "NOT YET PINNED" in dockerfile
    ), base


def test_pin_script_writes_the_digest_into_the_dockerfile(tmp_path):
    import os
    import shutil
    import subprocess

    copy = tmp_path / "Dockerfile"
    shutil.copy(PACKAGING / "Dockerfile", copy)
    fake = tmp_path / "bin"
    fake.mkdir()
    digest = "sha256:" + "ab12" * 16
    # A stand-in for `docker buildx imagetools inspect` (no registry is reachable from the tests).
    (fake / "docker").write_text(
        "#!/bin/sh\n[ \"$1\" = buildx ] && [ \"$2\" = version ] && exit 0\n"
        f"printf 'Name: docker.io/library/%s\\nMediaType: x\\nDigest:    {digest}\\n' \"$4\"\n"
    )
    (fake / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ACR", None)
    done = subprocess.run(
        ["sh", str(PACKAGING / "pin-base-image.sh"), "", str(copy)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    text = copy.read_text()
    assert f"ARG BASE_IMAGE=python:3.11-slim-bookworm@{digest}\n" in text
    assert "NOT YET PINNED" not in text and "FROM ${BASE_IMAGE}" in text
    # A tool that answers nonsense leaves the file alone and fails.
    (fake / "docker").write_text("#!/bin/sh\n[ \"$2\" = version ] && exit 0\necho 'Digest: latest'\n")
    before = copy.read_text()
    failed = subprocess.run(
        ["sh", str(PACKAGING / "pin-base-image.sh"), "python:3.11-slim-bookworm", str(copy)],
        env=env, capture_output=True, text=True, timeout=30,
    )
    assert failed.returncode == 1 and "could not resolve a digest" in failed.stderr
    assert copy.read_text() == before


def test_dockerignore_keeps_the_context_to_what_the_images_copy():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"  # exclude everything, then allow what is copied
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for dockerfile in (PACKAGING / "Dockerfile", ROOT / "packaging" / "azureml" / "Dockerfile.train"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    source = source.rstrip("/")
                    assert any(source == a or source.startswith(a + "/") for a in allowed), (dockerfile.name, source)
    assert not allowed & {".git", ".venv", ".tools", "tests", "docs"}


def _measured_rss_mib() -> float:
    text = (ROOT / "docs" / "benchmarks" / "remote.md").read_text()
    return float(re.search(r"Peak RSS of the server's process tree[^:]*: (\d+) MiB", text).group(1))


def _mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()
    return float(number) * (1024 if unit == "Gi" else 1)


def test_instance_type_manifest_is_sized_for_the_measured_rss():
    import yaml

    from azure.ai.ml import load_online_deployment

    manifest = yaml.safe_load((PACKAGING / "instancetype-neurohsi-scoring.yaml").read_text())
    assert manifest["apiVersion"] == "amlarc.azureml.com/v1alpha1" and manifest["kind"] == "InstanceType"
    resources = manifest["spec"]["resources"]
    request, limit = _mebibytes(resources["requests"]["memory"]), _mebibytes(resources["limits"]["memory"])
    rss = _measured_rss_mib()
    assert rss * 1.2 <= request <= limit, (rss, request, limit)
    assert float(resources["requests"]["cpu"]) >= 1
    # Guaranteed QoS: every request equals its limit.
    assert resources["requests"] == resources["limits"]
    deployment = load_online_deployment(PACKAGING / "deployment-kubernetes.yml")
    assert deployment.instance_type == manifest["metadata"]["name"]
    assert deployment.app_insights_enabled is True


def test_managed_deployment_has_two_instances_app_insights_and_matching_concurrency():
    from azure.ai.ml import load_online_deployment

    deployment = load_online_deployment(PACKAGING / "deployment-managed.yml")
    assert deployment.instance_count >= 2
    assert deployment.app_insights_enabled is True
    slots = int(deployment.environment_variables["NEUROHSI_MAX_CONCURRENT_SCORING"])
    assert deployment.request_settings.max_concurrent_requests_per_instance == slots
    # The front end's timeout must fit in the client's default 20 s deadline.
    from remote.scoring_client import DEFAULT_DEADLINE_S

    assert deployment.request_settings.request_timeout_ms < DEFAULT_DEADLINE_S * 1000


def test_training_image_base_is_pinned_or_says_how_and_amlignore_keeps_the_upload_small(tmp_path):
    import os
    import shutil
    import subprocess

    train = ROOT / "packaging" / "azureml" / "Dockerfile.train"
    text = train.read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE).group(1)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base) or (
        base == "python:3.11-slim-bookworm" and "NOT YET PINNED" in text), base
    # The same pin script pins it (a stand-in docker answers, as in the scoring test above).
    copy = tmp_path / "Dockerfile.train"
    shutil.copy(train, copy)
    fake = tmp_path / "bin"
    fake.mkdir()
    digest = "sha256:" + "cd34" * 16
    (fake / "docker").write_text("#!/bin/sh\n[ \"$2\" = version ] && exit 0\n"
                                 f"printf 'Digest:    {digest}\\n'\n")
    (fake / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ACR", None)
    done = subprocess.run(["sh", str(PACKAGING / "pin-base-image.sh"), "", str(copy)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    pinned = copy.read_text()
    assert f"ARG BASE_IMAGE=python:3.11-slim-bookworm@{digest}" in pinned
    assert "NOT YET PINNED" not in pinned and "FROM ${BASE_IMAGE}" in pinned and "COPY core/ core/" in pinned
    # .amlignore: what the environment build uploads is what the image copies, nothing more.
    rules = lambda path: [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert rules(ROOT / ".amlignore") == rules(ROOT / ".dockerignore")
    assert rules(ROOT / ".amlignore")[0] == "*"
