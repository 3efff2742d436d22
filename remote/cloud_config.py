"""Cloud settings shared by the CLI and the GUI: one set of names, env vars over saved settings.

Every field has one name (used by Settings ▸ Cloud, the retraining dialog and
``neurohsi cloud``) and one environment variable ``NEUROHSI_*`` that overrides the
saved value. Secrets never live here: the account key, SAS token, connection
string and service-principal secret are read from the keyring
(:mod:`remote.credentials`); env ``NEUROHSI_STORAGE_CONNECTION_STRING`` still works.

Storage sign-in (``storage_auth``):

* ``connection-string``: keyring ``storage-connection-string`` (or the env var);
* ``account-key``: ``storage_account_url`` + keyring ``storage-account-key``;
* ``sas``: ``storage_account_url`` + keyring ``storage-sas-token``;
* ``entra-id``: ``storage_account_url`` + Microsoft Entra ID through azure-identity's
  DefaultAzureCredential (managed identity, Azure CLI / VS Code sign-in, environment),
  for tenants that disable shared-key access;
* ``entra-browser``: the same with an interactive browser sign-in as NeuroHSI's own app
  registration (``client_id``), its tokens kept in a persistent encrypted cache
  (``TokenCachePersistenceOptions``), so the technician signs in once, not at every start.
  Both also sign in to Azure ML. No service-principal secret is used on a workstation.

:func:`check_storage` and :func:`check_azureml` (the "Test" buttons) answer in one line what works.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlparse

from core.errors import NeuroHSIError, one_line

STORAGE_AUTH_METHODS = ("connection-string", "account-key", "sas", "entra-id", "entra-browser")
AUTH_TITLES = {
    "connection-string": "Connection string (keyring)",
    "account-key": "Account key (keyring)",
    "sas": "SAS token (keyring)",
    "entra-id": "Microsoft Entra ID (DefaultAzureCredential)",
    "entra-browser": "Microsoft Entra ID (sign in with the browser)",
}
ENTRA_METHODS = ("entra-id", "entra-browser")
TOKEN_CACHE_NAME = "neurohsi"  # the persistent, encrypted MSAL token cache of browser sign-in
DEFAULT_ENVIRONMENT = "azureml:neurohsi-train@latest"


class CloudConfigError(NeuroHSIError, ValueError):
    """A cloud setting is missing or malformed."""


@dataclass(frozen=True)
class CloudConfig:
    """Storage and Azure ML workspace settings (no secrets)."""

    storage_auth: str = "connection-string"
    storage_account_url: str = ""
    container: str = "neurohsi"
    subscription_id: str = ""
    resource_group: str = ""
    workspace: str = ""
    compute: str = ""
    environment: str = DEFAULT_ENVIRONMENT
    tenant_id: str = ""
    client_id: str = ""

    def __post_init__(self) -> None:
        if self.storage_auth not in STORAGE_AUTH_METHODS:
            raise CloudConfigError(f"storage sign-in must be one of {', '.join(STORAGE_AUTH_METHODS)}, "
                                   f"got {self.storage_auth!r}")


# field -> environment variable (NEUROHSI_* everywhere; the CLI's flags default to these)
ENV_VARS = {
    "storage_auth": "NEUROHSI_STORAGE_AUTH",
    "storage_account_url": "NEUROHSI_STORAGE_ACCOUNT_URL",
    "container": "NEUROHSI_CONTAINER",
    "subscription_id": "NEUROHSI_AZUREML_SUBSCRIPTION_ID",
    "resource_group": "NEUROHSI_AZUREML_RESOURCE_GROUP",
    "workspace": "NEUROHSI_AZUREML_WORKSPACE",
    "compute": "NEUROHSI_AZUREML_COMPUTE",
    "environment": "NEUROHSI_AZUREML_ENVIRONMENT",
    "tenant_id": "NEUROHSI_AZUREML_TENANT_ID",
    "client_id": "NEUROHSI_AZUREML_CLIENT_ID",
}
# field -> QSettings key of Settings ▸ Cloud
SETTINGS_KEYS = {name: f"cloud/{name}" for name in ENV_VARS}
AZUREML_FIELDS = ("subscription_id", "resource_group", "workspace", "compute", "environment")


def resolve(saved: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None) -> CloudConfig:
    """The effective settings: ``env`` (default ``os.environ``) ``NEUROHSI_*`` over ``saved`` over defaults."""
    env = os.environ if env is None else env
    saved = saved or {}
    values = {}
    for f in fields(CloudConfig):
        value = env.get(ENV_VARS[f.name]) or saved.get(f.name) or ""
        if value:
            values[f.name] = str(value).strip()
    return CloudConfig(**values)


def overridden(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Fields whose value comes from an environment variable now: field -> variable (the GUI shows them)."""
    env = os.environ if env is None else env
    return {name: var for name, var in ENV_VARS.items() if env.get(var)}


def environment_reference(text: str) -> str:
    """An Azure ML environment as azure-ai-ml wants it: ``azureml:NAME@latest`` or ``azureml:NAME:VERSION``.

    ``NAME@latest`` and ``NAME:VERSION`` (what people type) get the ``azureml:`` prefix; a
    Docker image needs a registry path with '/' (``mcr.microsoft.com/azureml/...:tag``) and
    is returned as it is.
    """
    text = (text or "").strip()
    if not text:
        raise CloudConfigError("Azure ML environment is empty: give NAME@latest, NAME:VERSION or an image")
    if text.startswith("azureml:") or "/" in text:
        return text
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(@latest|:[A-Za-z0-9_.-]+)", text):
        return f"azureml:{text}"
    raise CloudConfigError(f"Azure ML environment {text!r} is neither NAME@latest, NAME:VERSION nor an image "
                           "reference with a registry (…/name:tag)")


def _account_name(url: str) -> str:
    """Storage account name of a blob endpoint URL: the first host label, or (Azurite, an IP) the first path part."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise CloudConfigError(f"storage account URL {url!r} must look like https://<account>.blob.core.windows.net")
    host = parsed.hostname or ""
    if "." in host and not host.replace(".", "").isdigit():
        return host.split(".")[0]
    name = parsed.path.strip("/").split("/")[0]
    if not name:
        raise CloudConfigError(f"cannot tell the storage account name from {url!r}")
    return name


def storage_connection_string(config: CloudConfig) -> str | None:
    """A connection string for the configured shared-key or SAS sign-in (None for Entra ID).

    Built from the account URL and the keyring secret so the rest (and a local training
    job's environment) keeps one code path. CloudConfigError naming what is missing.
    """
    from remote.credentials import (
        STORAGE_ACCOUNT_KEY,
        STORAGE_SAS_TOKEN,
        get_secret,
        remember_secret,
        resolve_storage_connection_string,
    )

    method = config.storage_auth
    if method == "connection-string":
        value = resolve_storage_connection_string()
        if not value:
            raise CloudConfigError("no blob storage configured: store the connection string in Settings ▸ Cloud "
                                   "(keyring 'storage-connection-string') or set NEUROHSI_STORAGE_CONNECTION_STRING")
        return value
    if method in ENTRA_METHODS:
        return None
    url = config.storage_account_url.rstrip("/")
    if not url:
        raise CloudConfigError(f"{AUTH_TITLES[method]} needs the storage account URL")
    secret_name = STORAGE_ACCOUNT_KEY if method == "account-key" else STORAGE_SAS_TOKEN
    secret = get_secret(secret_name)
    if not secret:
        raise CloudConfigError(f"no {'account key' if method == 'account-key' else 'SAS token'} in the keyring "
                               f"('{secret_name}'): enter it in Settings ▸ Cloud")
    scheme = urlparse(url).scheme
    if method == "account-key":
        value = (f"DefaultEndpointsProtocol={scheme};AccountName={_account_name(url)};AccountKey={secret};"
                 f"BlobEndpoint={url};")
    else:
        value = f"BlobEndpoint={url};SharedAccessSignature={secret.lstrip('?')};"
    remember_secret(value)
    return value


def make_storage(config: CloudConfig, **options):
    """A :class:`remote.blob_storage.BlobStorage` for ``config`` (``options`` go to it: retries, timeout_s...)."""
    from remote.blob_storage import BlobStorage

    connection = storage_connection_string(config)
    if connection is not None:
        return BlobStorage(connection, container=config.container, **options)
    if not config.storage_account_url:
        raise CloudConfigError("Microsoft Entra ID sign-in needs the storage account URL")
    _account_name(config.storage_account_url)  # a malformed URL fails here, with its own message
    return BlobStorage(account_url=config.storage_account_url, credential=entra_credential(config),
                       container=config.container, **options)


def entra_credential(config: CloudConfig):
    """The azure-identity credential of an Entra ID sign-in (None for key/SAS/connection-string sign-in).

    ``entra-browser`` (a technician at a workstation): interactive user sign-in with NeuroHSI's
    own app registration (``client_id``, a public client the hospital registers once:
    docs/deploy.md, "Sign-in"), never another product's application id; ``entra-id`` (the
    cloud, a build agent): DefaultAzureCredential, i.e. the managed identity where there is one.
    """
    if config.storage_auth == "entra-browser":
        return browser_credential(config)
    if config.storage_auth == "entra-id":
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    return None


def browser_credential(config: CloudConfig):
    """Interactive browser sign-in as NeuroHSI's app registration, tokens in a persistent encrypted cache."""
    if not config.client_id:
        raise CloudConfigError("browser sign-in needs NeuroHSI's own app registration: set its client id "
                               f"({ENV_VARS['client_id']} or Settings ▸ Cloud; docs/deploy.md, \"Sign-in\")")
    from azure.identity import InteractiveBrowserCredential, TokenCachePersistenceOptions

    return InteractiveBrowserCredential(
        tenant_id=config.tenant_id or None,
        client_id=config.client_id,
        cache_persistence_options=TokenCachePersistenceOptions(name=TOKEN_CACHE_NAME),
    )


def scoring_credential(config: CloudConfig):
    """The credential for an ``aad_token`` scoring endpoint: the browser sign-in of NeuroHSI's app
    when a client id is set (workstations), else DefaultAzureCredential (a managed identity)."""
    if config.client_id:
        return browser_credential(config)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def check_storage(config: CloudConfig, **options) -> tuple[bool, str]:
    """(works, one line): can this app reach the container with these settings and the keyring?"""
    try:
        storage = make_storage(config, **options)
        storage.check()
    except Exception as exc:  # every failure is reported in one line, secrets redacted
        return False, f"Storage ({AUTH_TITLES[config.storage_auth]}): {one_line(exc)}"
    return True, f"Storage works: container '{config.container}' at {storage.account_url} " \
                 f"({AUTH_TITLES[config.storage_auth]})"


def azureml_missing(config: CloudConfig) -> list[str]:
    """Azure ML fields still empty, as the env variable names people can set."""
    return [ENV_VARS[name] for name in AZUREML_FIELDS if not getattr(config, name)]


def make_azureml_backend(config: CloudConfig, **options):
    """An :class:`remote.training_backends.azureml.AzureMLBackend` for ``config``."""
    from remote.training_backends.base import JobError

    missing = [name for name in AZUREML_FIELDS if not getattr(config, name)]
    if missing:
        titles = ", ".join(name.replace("_", " ").replace("id", "ID") for name in missing)
        raise JobError(f"workspace not configured: {titles} missing (Settings ▸ Cloud or NEUROHSI_AZUREML_*)")
    from remote.training_backends.azureml import AzureMLBackend

    if config.storage_auth == "entra-browser" or config.client_id:
        options.setdefault("credential", browser_credential(config))  # one browser sign-in for both
    return AzureMLBackend(config.subscription_id, config.resource_group, config.workspace, config.compute,
                          environment_reference(config.environment), **options)


def check_azureml(config: CloudConfig, **options) -> tuple[bool, str]:
    """(works, one line): does the workspace answer and know the compute cluster and the environment?"""
    try:
        backend = make_azureml_backend(config, **options)
        backend.check()
    except Exception as exc:
        return False, f"Azure ML: {one_line(exc)}"
    return True, (f"Azure ML works: workspace '{config.workspace}', compute '{config.compute}', "
                  f"environment {environment_reference(config.environment)}")
