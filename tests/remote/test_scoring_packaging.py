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
    ("name", "kind"),
    [("endpoint-managed.yml", "ManagedOnlineEndpoint"), ("endpoint-kubernetes.yml", "KubernetesOnlineEndpoint")],
)
def test_endpoints_validate(name, kind):
    from azure.ai.ml import load_online_endpoint

    endpoint = load_online_endpoint(PACKAGING / name)
    assert type(endpoint).__name__ == kind
    assert endpoint.auth_mode == "key"


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
    broken.write_text(text.replace("request_timeout_ms: 30000", "request_timeout_ms: soon"))
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
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "torch==2.13.0" in dockerfile and "download.pytorch.org/whl/cpu" in dockerfile
    entry = re.search(r'"--entry_script", "/opt/neurohsi/([^"]+)"', dockerfile).group(1)
    assert (ROOT / entry).is_file()
    assert "USER neurohsi" in dockerfile
