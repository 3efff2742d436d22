"""Live metrics of an Azure ML job read through the workspace's MLflow REST API (remote.mlflow_rest).

No workspace here, and no MLflow server in the test set (mlflow-skinny has none): a loopback stand-in
answers the open MLflow REST API (``/api/2.0/mlflow/runs/get``, ``metrics/get-history`` (paged),
``experiments/search``, ``runs/search``) in MLflow's JSON shapes, and checks the bearer token.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from remote.endpoint_auth import EntraTokenAuth
from remote.mlflow_rest import ARM_SCOPE, MlflowRestClient, workspace_rest_base
from remote.tracking import TrackingError, read_cv_run_metrics, read_job_metrics, read_run_metrics

PREFIX = "/mlflow/v1.0/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
TOKEN = "arm-token-0123456789"


def _history(fold, epochs=3):
    return [{"key": f"fold_{fold}.val_oacc", "value": 0.5 + 0.1 * e, "timestamp": 1000 + 10 * fold + e, "step": e}
            for e in range(1, epochs + 1)]


RUNS = {
    "trial-1": {"info": {"run_id": "trial-1", "status": "RUNNING", "artifact_uri": "azureml://x"},
                "data": {"metrics": [{"key": "fold_1.val_oacc", "value": 0.7, "timestamp": 1, "step": 3}],
                         "params": [{"key": "epochs", "value": "3"}, {"key": "neurohsi.folds", "value": "2"}],
                         "tags": [{"key": "neurohsi.cv_run", "value": "cv-7"}]}},
    "trial-2": {"info": {"run_id": "trial-2", "status": "RUNNING", "artifact_uri": "azureml://x"},
                "data": {"metrics": [{"key": "fold_2.val_oacc", "value": 0.6, "timestamp": 1, "step": 2}],
                         "params": [{"key": "epochs", "value": "3"}, {"key": "neurohsi.folds", "value": "2"}],
                         "tags": [{"key": "neurohsi.cv_run", "value": "cv-7"}]}},
}
HISTORY = {("trial-1", "fold_1.val_oacc"): _history(1), ("trial-2", "fold_2.val_oacc"): _history(2, 2)}


class FakeWorkspaceMlflow:
    def __init__(self):
        self.seen = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append((self.command, parts.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error_code": "UNAUTHENTICATED", "message": "token missing"})
                if not parts.path.startswith(PREFIX + "/api/2.0/mlflow/"):
                    return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND"})
                call, q = parts.path.removeprefix(PREFIX + "/api/2.0/mlflow/"), parse_qs(parts.query)
                if call == "runs/get":
                    run = RUNS.get(q["run_id"][0])
                    return self._send(200, {"run": run}) if run else self._send(404, {"error_code": "NOT_FOUND"})
                if call == "metrics/get-history":  # two pages, as MLflow pages long histories
                    metrics = HISTORY.get((q["run_id"][0], q["metric_key"][0]), [])
                    if "page_token" not in q:
                        return self._send(200, {"metrics": metrics[:1], "next_page_token": "p2"})
                    return self._send(200, {"metrics": metrics[1:]})
                if call == "experiments/search":
                    return self._send(200, {"experiments": [{"experiment_id": "7", "name": "neurohsi-training"}]})
                if call == "runs/search":
                    wanted = json.loads(body)["filter"]
                    return self._send(200, {"runs": [r for r in RUNS.values() if "'cv-7'" in wanted]})
                return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND"})

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}{PREFIX}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Credential:
    def __init__(self, token=TOKEN):
        self.token, self.scopes = token, []

    def get_token(self, *scopes, **kw):
        self.scopes.append(scopes)
        return SimpleNamespace(token=self.token, expires_on=4_000_000_000)


@pytest.fixture
def server():
    fake = FakeWorkspaceMlflow()
    yield fake
    fake.close()


def test_workspace_uri_becomes_https():
    uri = "azureml://westeurope.api.azureml.ms" + PREFIX
    assert workspace_rest_base(uri) == "https://westeurope.api.azureml.ms" + PREFIX
    with pytest.raises(TrackingError):
        workspace_rest_base("file:/tmp/mlruns")


def test_a_running_job_is_read_live_with_the_users_token(server):
    credential = Credential()
    client = MlflowRestClient(server.base, EntraTokenAuth(credential, scope=ARM_SCOPE))
    events = read_run_metrics(client.base_url, "trial-1", client=client)
    assert [(e["fold"], e["epoch"], e["val_oacc"]) for e in events] == [(1, 1, 0.6), (1, 2, 0.7), (1, 3, 0.8)]
    assert credential.scopes[0] == (ARM_SCOPE,)
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in server.seen)
    # a pipeline's trials, found by their tag, as one list
    merged = read_cv_run_metrics(client.base_url, "cv-7", client=client)
    assert sorted({e["fold"] for e in merged}) == [1, 2] and len(merged) == 5


def test_a_rejected_token_is_one_line(server):
    client = MlflowRestClient(server.base, EntraTokenAuth(Credential("wrong-token-000000"), scope=ARM_SCOPE))
    with pytest.raises(TrackingError, match=r"HTTP 401: token missing"):
        read_run_metrics(client.base_url, "trial-1", client=client)


def test_read_job_metrics_uses_the_rest_reader_when_the_plugin_is_missing(server):
    class Backend:
        name = "azureml"

        def tracking_location(self, job_id):
            return None  # no azureml-mlflow in the desktop set

        def mlflow_rest_client(self):
            return MlflowRestClient(server.base, EntraTokenAuth(Credential(), scope=ARM_SCOPE))

        def cv_run_of(self, job_id):
            return None

        def metrics(self, job_id):
            raise AssertionError("the live reader must be used")

    events = read_job_metrics(Backend(), "trial-2")
    assert [(e["fold"], e["epoch"]) for e in events] == [(2, 1), (2, 2)]
