"""Reading a running Azure ML job's metrics from the desktop through the workspace's MLflow REST API.

The desktop set cannot hold azureml-mlflow (its 1.62.0.post6 needs mlflow-skinny <= 3.15.0 and
azure-storage-blob <= 12.27.1, the desktop has 3.17.2 and a newer storage SDK), and without it
MLflow does not understand ``azureml://`` tracking URIs. The workspace's MLflow endpoint speaks
the open MLflow REST API over https, with an Entra ID bearer token: :class:`MlflowRestClient`
implements the few calls :mod:`remote.tracking`'s readers make (``get_run``,
``get_metric_history``, ``search_experiments``, ``search_runs``) with ``requests`` and the
user's sign-in, so the technician sees live metrics without azureml-mlflow.

URL: ``azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/<s>/resourceGroups/<rg>/
providers/Microsoft.MachineLearningServices/workspaces/<ws>`` (the workspace's
``mlflow_tracking_uri``) becomes the same with ``https://``; the MLflow paths
(``/api/2.0/mlflow/...``) follow it. Token scope: Azure Resource Manager, which azureml-mlflow
uses for the same endpoint. Tested against a loopback stand-in only (no workspace here).
"""
from __future__ import annotations

from types import SimpleNamespace

import requests

from remote.tracking import TrackingError

ARM_SCOPE = "https://management.azure.com/.default"
_MAX_PAGES = 50


def workspace_rest_base(tracking_uri: str) -> str:
    """The https base of an ``azureml://`` workspace tracking URI (https/http URIs are returned as they are)."""
    uri = (tracking_uri or "").strip().rstrip("/")
    if uri.startswith("azureml://"):
        return "https://" + uri.removeprefix("azureml://")
    if uri.startswith(("https://", "http://")):
        return uri
    raise TrackingError(f"not a workspace MLflow tracking URI: {uri[:120]!r}")


class MlflowRestClient:
    """The subset of ``mlflow.tracking.MlflowClient`` the readers use, over REST with a bearer token.

    ``token_auth``: an object with ``header() -> "Bearer <token>"`` (:class:`remote.endpoint_auth.
    EntraTokenAuth` with :data:`ARM_SCOPE`), refreshed before expiry.
    """

    def __init__(self, base_url: str, token_auth, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (5.0, 30.0)) -> None:
        self.base_url = workspace_rest_base(base_url)
        self._auth, self._timeout = token_auth, timeout
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"MlflowRestClient({self.base_url!r})"

    def _call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None) -> dict:
        from remote.endpoint_auth import TokenError

        url = f"{self.base_url}/api/2.0/mlflow/{path}"
        try:
            headers = {"Authorization": self._auth.header()}
            response = self._session.request(method, url, params=params, json=body, headers=headers,
                                             timeout=self._timeout, allow_redirects=False)
        except TokenError as exc:
            raise TrackingError(f"workspace MLflow: {exc}") from None
        except requests.RequestException as exc:
            raise TrackingError(f"workspace MLflow at {self.base_url}: {exc.__class__.__name__}") from None
        if response.status_code != 200:
            try:
                detail = str(response.json().get("message") or response.json().get("error_code") or "")
            except ValueError:
                detail = ""
            raise TrackingError(f"workspace MLflow {path}: HTTP {response.status_code}"
                                + (f": {' '.join(detail.split())[:200]}" if detail else ""))
        try:
            data = response.json()
        except ValueError:
            raise TrackingError(f"workspace MLflow {path}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise TrackingError(f"workspace MLflow {path}: unexpected answer")
        return data

    def get_run(self, run_id: str):
        return _run(self._call("GET", "runs/get", params={"run_id": run_id}).get("run") or {})

    def get_metric_history(self, run_id: str, key: str) -> list:
        out, token = [], None
        for _ in range(_MAX_PAGES):
            params = {"run_id": run_id, "metric_key": key, **({"page_token": token} if token else {})}
            data = self._call("GET", "metrics/get-history", params=params)
            out += [_metric(m) for m in data.get("metrics") or []]
            token = data.get("next_page_token")
            if not token:
                break
        return out

    def search_experiments(self) -> list:
        data = self._call("POST", "experiments/search", body={"max_results": 1000})
        return [SimpleNamespace(experiment_id=str(e.get("experiment_id")), name=e.get("name"))
                for e in data.get("experiments") or []]

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", max_results: int = 1000) -> list:
        out, token = [], None
        for _ in range(_MAX_PAGES):
            body = {"experiment_ids": list(experiment_ids), "filter": filter_string, "max_results": max_results,
                    **({"page_token": token} if token else {})}
            data = self._call("POST", "runs/search", body=body)
            out += [_run(r) for r in data.get("runs") or []]
            token = data.get("next_page_token")
            if not token:
                break
        return out

    def download_artifacts(self, run_id: str, path: str, dst: str):
        # Azure ML keeps artifacts in the workspace's storage, not behind this API.
        raise TrackingError("artifacts are not read over the workspace MLflow REST API")


def _metric(m: dict):
    return SimpleNamespace(key=m.get("key"), value=float(m.get("value", 0.0)), timestamp=int(m.get("timestamp") or 0),
                           step=int(m.get("step") or 0))


def _run(r: dict):
    info, data = r.get("info") or {}, r.get("data") or {}
    return SimpleNamespace(
        info=SimpleNamespace(run_id=info.get("run_id") or info.get("run_uuid"), status=info.get("status"),
                             artifact_uri=info.get("artifact_uri"), end_time=info.get("end_time"),
                             experiment_id=info.get("experiment_id")),
        data=SimpleNamespace(metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics") or []},
                             params={p["key"]: p.get("value") for p in data.get("params") or []},
                             tags={t["key"]: t.get("value") for t in data.get("tags") or []}),
    )
