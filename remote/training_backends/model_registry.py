"""Trained models in the Azure ML workspace model registry: the entity, its tags, listing (azure-ai-ml).

A model is registered from the job's ``model`` output (``azureml://jobs/<job>/outputs/model``)
under its NeuroHSI name and version, tagged with what decides whether it may be used:
the dataset's manifest sha256, the camera profile, the band count and classes, and the
headline metrics. :func:`model_entity` builds the entity offline (tests validate it
with the SDK's own loader); :class:`remote.training_backends.azureml.AzureMLBackend`
sends it, lists versions and downloads them.
"""
from __future__ import annotations

TAG_PREFIX = "neurohsi."


def registry_tags(info) -> dict[str, str]:
    """Registry tags of a :class:`core.model.files.ModelInfo` (values are strings, as the registry stores them)."""
    training, metrics = dict(info.training or {}), dict(info.metrics or {})
    tags = {
        "dataset_sha256": str(training.get("dataset_sha256", "")),
        "dataset": str(training.get("dataset", "")),
        "profile": info.profile_id,
        "bands": str(info.n_bands),
        "patch_size": str(info.patch_size),
        "classes": ",".join(str(c) for c in info.class_ids),
        "model_sha256": info.sha256,
    }
    held_out = (metrics.get("held_out") or {}).get("overall") or {}
    for key, value in (("test_oacc_mean", metrics.get("test_oacc_mean")), ("held_out_oacc", held_out.get("oacc")),
                       ("held_out_tumour_sensitivity", held_out.get("tumour_sensitivity"))):
        if isinstance(value, (int, float)):
            tags[key] = f"{value:.4f}"
    return {TAG_PREFIX + k: v for k, v in tags.items() if v}


def model_entity(info, job_id: str, *, output: str = "model"):
    """The azure-ai-ml ``Model`` registering job ``job_id``'s output under ``info.name`` / ``info.version``."""
    from azure.ai.ml.entities import Model

    return Model(
        name=info.name,
        version=str(info.version),
        path=f"azureml://jobs/{job_id}/outputs/{output}",
        type="custom_model",
        description=f"NeuroHSI Conv2DNet {info.label} for camera profile {info.profile_id} (safetensors)",
        tags=registry_tags(info),
    )


def version_row(model) -> dict:
    """What the app and ``neurohsi cloud registry`` show of one registered version."""
    created = getattr(getattr(model, "creation_context", None), "created_at", None)
    return _row(model.name, model.version, created, dict(getattr(model, "tags", None) or {}))


def local_version_row(model, stored: dict | None) -> dict:
    """The same row for a model a local job uploaded (``remote.blob_storage`` ``RemoteModel``),
    tags from the ``registry_tags`` its job stored in metrics.json (``{"tags": {...}}``)."""
    return _row(model.name, model.version, model.last_modified, dict((stored or {}).get("tags") or {}))


def _row(name: str, version, created, tags: dict) -> dict:
    return {
        "name": name,
        "version": str(version),
        "created": None if created is None else str(created),
        "profile": tags.get(TAG_PREFIX + "profile"),
        "dataset_sha256": tags.get(TAG_PREFIX + "dataset_sha256"),
        "held_out_oacc": tags.get(TAG_PREFIX + "held_out_oacc"),
        "test_oacc_mean": tags.get(TAG_PREFIX + "test_oacc_mean"),
    }
