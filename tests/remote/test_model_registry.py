"""Model registration: the entity validates offline with the SDK's loader and carries the deciding tags."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from core.model.network import Conv2DNet
from core.model.files import load_model, save_model
from remote.training_backends.azureml import AzureMLBackend
from remote.training_backends.model_registry import model_entity, registry_tags

pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning"
)


@pytest.fixture
def info(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_model(path, Conv2DNet(25, 5), name="conv2dnet-ward7-20261129", version="3", class_ids=(1, 2, 3, 4, 5),
               class_names=("Healthy", "Tumour", "Venous", "Arterial", "Dura"), profile_id="thesis-sm5x5-nir",
               training={"dataset": "ward7", "dataset_sha256": "ab" * 32},
               metrics={"mode": "double-cv", "test_oacc_mean": 0.91234,
                        "held_out": {"overall": {"oacc": 0.8765, "tumour_sensitivity": 0.7}}})
    return load_model(path).info


def test_registered_model_entity_round_trips_through_the_sdk_schema(info, tmp_path):
    from azure.ai.ml import load_model as load_registered

    entity = model_entity(info, "job-42")
    path = tmp_path / "model.yml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(entity._to_dict()))))
    loaded = load_registered(path)
    assert (loaded.name, loaded.version, loaded.type) == ("conv2dnet-ward7-20261129", "3", "custom_model")
    assert loaded.path == "azureml://jobs/job-42/outputs/model"
    assert loaded.tags["neurohsi.dataset_sha256"] == "ab" * 32
    assert loaded.tags["neurohsi.profile"] == "thesis-sm5x5-nir" and loaded.tags["neurohsi.bands"] == "25"
    assert loaded.tags["neurohsi.held_out_oacc"] == "0.8765" and loaded.tags["neurohsi.test_oacc_mean"] == "0.9123"
    assert loaded.tags["neurohsi.model_sha256"] == info.sha256
    assert all(isinstance(v, str) for v in registry_tags(info).values())


def test_backend_registers_lists_newest_first(info):
    """Azure ML cannot run here: a stand-in for MLClient.models answers as the SDK does (entities back)."""
    sent = []

    class Models:
        def create_or_update(self, model):
            sent.append(model)
            return model

        def list(self, name):
            return [SimpleNamespace(name=name, version=v, tags={"neurohsi.profile": "p"}, creation_context=None)
                    for v in ("2", "10", "3")]

    backend = AzureMLBackend("sub", "rg", "ws", "cpu", "neurohsi-train@latest")
    backend._client = SimpleNamespace(models=Models())
    row = backend.register_model("job-42", info)
    assert row["version"] == "3" and row["dataset_sha256"] == "ab" * 32
    assert sent[0].path == "azureml://jobs/job-42/outputs/model"
    assert [r["version"] for r in backend.registered_versions("m")] == ["10", "3", "2"]
