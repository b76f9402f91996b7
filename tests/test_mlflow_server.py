"""A real `mlflow server` on localhost: the registry webhook delivers model_version.created
to shapgov's approval check, which tags the version through the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import mlflow
import pytest
import requests
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
from shapgov.mlflow.signing import verify_version
from shapgov.mlflow.webhook import SignatureError, make_app, verify_signature

# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
SKLEARN = ["scikit-learn"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(
        os.environ,
        MLFLOW_DISABLE_TELEMETRY="true",
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS="true",
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES="http,https",
        # webhooks are delivered by the server's own threads; the job runner (GenAI jobs)
        # would start seven huey consumers, each importing mlflow
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(proc.stdout.read().decode()[-3000:])
    else:  # pragma: no cover
        proc.kill()
        pytest.fail("mlflow server did not start")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_webhook_approves_a_new_version_through_a_real_server(server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    # the webhook signs as `shapgov approve` does (the receiver holds the approval key)
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", "webhook-approval-key-0123456789")
    monkeypatch.setenv("SHAPGOV_APPROVER", "approval-webhook")
    mlflow.set_tracking_uri(server)
    mlflow.set_registry_uri(server)
    mlflow.set_experiment("webhook")
    port = _free_port()
    receiver = make_server(
        "127.0.0.1", port, make_app(secret="s3cret", alias="champion"), handler_class=_Quiet
    )
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    client = mlflow.tracking.MlflowClient()
    try:
        client.create_webhook(
            name="shapgov-approval",
            url=f"http://127.0.0.1:{port}/",
            events=["model_version.created"],
            secret="s3cret",
        )
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
        with mlflow.start_run():
            e = shapgov.explain(model, X.iloc[:20], background=X)
            shapgov.mlflow.log_explanation(e)
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=SKLEARN)
        mv = mlflow.register_model(info.model_uri, "webhooked")
        deadline = time.time() + 60
        found = None
        while time.time() < deadline:  # the alias moves once the stored verdict verifies
            found = client.get_model_version("webhooked", mv.version)
            if "champion" in found.aliases or found.tags.get("shapgov.approval") == "rejected":
                break
            time.sleep(0.5)
        assert found.tags.get("shapgov.approval") == "approved", found.tags
        assert client.get_model_version_by_alias("webhooked", "champion").version == mv.version
        verified = verify_version("webhooked", mv.version)
        assert verified.verified and verified.approver == "approval-webhook", verified.reasons
        # a forged delivery is refused
        forged = requests.post(
            f"http://127.0.0.1:{port}/",
            data=b'{"entity": "model_version", "action": "created", "data": {}}',
            headers={
                "X-MLflow-Signature": "v1,AAAA",
                "X-MLflow-Timestamp": str(int(time.time())),
                "X-MLflow-Delivery-Id": "x",
            },
            timeout=10,
        )
        assert forged.status_code == 401
    finally:
        receiver.shutdown()
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'after.db'}")  # leave no dead server
        mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'after.db'}")


def test_signature_checks():
    with pytest.raises(SignatureError, match="not signed"):
        verify_signature("k", b"{}", {})
    with pytest.raises(SignatureError, match="old"):
        verify_signature(
            "k",
            b"{}",
            {"X-MLflow-Signature": "v1,x", "X-MLflow-Timestamp": "1", "X-MLflow-Delivery-Id": "d"},
        )
