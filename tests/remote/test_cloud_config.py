"""Cloud settings: one set of names (env NEUROHSI_* over saved settings), every storage sign-in tested on Azurite."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from remote.cloud_config import (
    CloudConfig,
    CloudConfigError,
    check_azureml,
    check_storage,
    environment_reference,
    overridden,
    resolve,
)
from remote.credentials import STORAGE_ACCOUNT_KEY, STORAGE_CONNECTION_STRING, STORAGE_SAS_TOKEN, set_secret
from tests.support.azurite import DEV_ACCOUNT, DEV_KEY


@pytest.fixture(autouse=True)
def no_storage_env(monkeypatch):
    for var in ("NEUROHSI_STORAGE_CONNECTION_STRING", "NEUROHSI_CONTAINER", "NEUROHSI_STORAGE_AUTH",
                "NEUROHSI_STORAGE_ACCOUNT_URL", "NEUROHSI_AZUREML_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)


def test_env_vars_override_saved_settings_with_the_cli_names():
    saved = {"container": "saved", "workspace": "ws-saved", "storage_auth": "sas"}
    env = {"NEUROHSI_CONTAINER": "from-env", "NEUROHSI_AZUREML_COMPUTE": "cpu-cluster"}
    config = resolve(saved, env)
    assert (config.container, config.workspace, config.compute, config.storage_auth) == (
        "from-env", "ws-saved", "cpu-cluster", "sas")
    assert overridden(env) == {"container": "NEUROHSI_CONTAINER", "compute": "NEUROHSI_AZUREML_COMPUTE"}
    assert resolve({}, {}).environment == "azureml:neurohsi-train@latest"
    with pytest.raises(CloudConfigError, match="storage sign-in must be one of"):
        resolve({"storage_auth": "password"}, {})


def test_environment_names_are_azure_ml_environments_not_images(tmp_path):
    assert environment_reference("neurohsi-train@latest") == "azureml:neurohsi-train@latest"
    assert environment_reference("neurohsi-train:3") == "azureml:neurohsi-train:3"
    assert environment_reference("azureml:neurohsi-train:3") == "azureml:neurohsi-train:3"
    assert environment_reference("myregistry.azurecr.io/neurohsi-train:0.1") == "myregistry.azurecr.io/neurohsi-train:0.1"
    with pytest.raises(CloudConfigError, match="neither NAME@latest"):
        environment_reference("neurohsi train")
    from remote.training_backends.azureml import build_command_job
    from remote.training_backends.base import JobSpec

    job = build_command_job(JobSpec(dataset="ds"), compute="cpu", environment="neurohsi-train@latest")
    assert job.environment == "azureml:neurohsi-train@latest"  # the GUI's old default, no longer an image


def test_connection_string_account_key_and_sas_each_reach_azurite(azurite, container_name, memory_keyring):
    url = azurite.account_url
    set_secret(STORAGE_CONNECTION_STRING, azurite.connection_string)
    ok, line = check_storage(CloudConfig(container=container_name), retries=0, timeout_s=5.0)
    assert ok and line.startswith("Storage works") and "Connection string" in line, line
    set_secret(STORAGE_ACCOUNT_KEY, DEV_KEY)
    ok, line = check_storage(CloudConfig("account-key", url, container_name), retries=0, timeout_s=5.0)
    assert ok and "Account key" in line and url in line, line
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(DEV_ACCOUNT, DEV_KEY, ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, write=True, list=True, create=True, add=True),
                               expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    set_secret(STORAGE_SAS_TOKEN, sas)
    ok, line = check_storage(CloudConfig("sas", url, container_name), retries=0, timeout_s=5.0)
    assert ok and "SAS token" in line, line


def test_failures_are_one_line_naming_the_method_without_the_secret(azurite, container_name, memory_keyring):
    url = azurite.account_url
    ok, line = check_storage(CloudConfig("account-key", url, container_name), retries=0, timeout_s=5.0)
    assert not ok and "no account key in the keyring" in line and "\n" not in line
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
    set_secret(STORAGE_ACCOUNT_KEY, wrong)
    ok, line = check_storage(CloudConfig("account-key", url, container_name), retries=0, timeout_s=5.0)
    assert not ok and "refused the credentials" in line and wrong not in line, line
    ok, line = check_storage(CloudConfig("sas", "", container_name))
    assert not ok and line == "Storage (SAS token (keyring)): SAS token (keyring) needs the storage account URL"
    # Entra ID: a token is never sent over plain http (Azurite here); a real account URL is https
    ok, line = check_storage(CloudConfig("entra-id", url, container_name), retries=0, timeout_s=5.0)
    assert not ok and line.startswith("Storage (Microsoft Entra ID") and "\n" not in line, line


def test_azure_ml_check_names_the_missing_settings():
    ok, line = check_azureml(CloudConfig(workspace="ws"))
    assert not ok and line == ("Azure ML: workspace not configured: subscription ID, resource group, compute "
                               "missing (Settings ▸ Cloud or NEUROHSI_AZUREML_*)")


def test_browser_sign_in_uses_a_persistent_token_cache_for_storage_and_azure_ml():
    """Building the clients contacts nothing: the browser opens only at the first request (not run here)."""
    from azure.identity import InteractiveBrowserCredential

    from remote.cloud_config import make_azureml_backend, make_storage

    config = CloudConfig("entra-browser", "https://neurohsiward7.blob.core.windows.net", "neurohsi",
                         subscription_id="s", resource_group="rg", workspace="ws", compute="cpu", tenant_id="t",
                         client_id="00000000-0000-4000-8000-00000000abcd")
    storage = make_storage(config)
    credential = storage._service.credential
    assert isinstance(credential, InteractiveBrowserCredential)
    cache = credential._cache_options  # persistent and encrypted: one sign-in, not one per start
    assert cache.name == "neurohsi" and cache.allow_unencrypted_storage is False
    assert storage.account_url == "https://neurohsiward7.blob.core.windows.net"
    backend = make_azureml_backend(config)
    assert isinstance(backend._credential, InteractiveBrowserCredential)
    # NeuroHSI's own app registration signs the user in (never another product's application id).
    assert credential._client_id == "00000000-0000-4000-8000-00000000abcd"
    with pytest.raises(CloudConfigError, match="needs the storage account URL"):
        make_storage(CloudConfig("entra-browser", "", "neurohsi"))


def test_browser_sign_in_without_the_products_app_registration_is_refused():
    from remote.cloud_config import make_azureml_backend, make_storage, scoring_credential

    config = CloudConfig("entra-browser", "https://neurohsiward7.blob.core.windows.net", "neurohsi",
                         subscription_id="s", resource_group="rg", workspace="ws", compute="cpu", tenant_id="t")
    for build in (make_storage, make_azureml_backend):
        with pytest.raises(CloudConfigError, match="NeuroHSI's own app registration"):
            build(config)
    # No client id: the cloud's managed identity (DefaultAzureCredential) scores on an aad_token endpoint.
    assert type(scoring_credential(CloudConfig())).__name__ == "DefaultAzureCredential"
