"""Explaining models (issue 17): governed explanations with every served prediction.

A real sqlite registry, a real approval, the explaining model loaded through MLflow's
pyfunc loader, and a real ``mlflow models serve`` process on localhost.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_shapley
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from stores import use_store

import shapgov
import shapgov.mlflow
from shapgov.mlflow.serving import UnapprovedModelError, log_explaining_model
from shapgov.serving import ServedExplainer

# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
LIGHTGBM = ["lightgbm"]


def _table(n=2000, m=6, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, m)), columns=[f"x{j}" for j in range(m)])
    y = X["x0"] * X["x1"] + np.sin(X["x2"]) + 0.3 * X.iloc[:, 3:].sum(axis=1)
    return X, y


def _approved(store):
    """A LightGBM model logged with its explained set, registered as ``reg``, and approved
    (alias ``champion``)."""
    X, y = _table()
    model = lightgbm.LGBMRegressor(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    background = X.iloc[:60]
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[100:200], background=background)
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=LIGHTGBM
        )
    mv = mlflow.register_model(info.model_uri, "reg")
    assert shapgov.approve("reg", mv.version, alias="champion").approved
    return model, X, background, mv


def _explaining(store, **options):
    model, X, background, _ = _approved(store)
    with mlflow.start_run():
        info = log_explaining_model(
            "models:/reg@champion",
            background=background,
            registered_model_name="reg-explained",
            **options,
        )
    client = mlflow.MlflowClient()
    version = max(int(v.version) for v in client.search_model_versions("name='reg-explained'"))
    client.set_registered_model_alias("reg-explained", "champion", str(version))
    return model, X, background, info


def test_served_values_equal_explain_and_brute_force(explained, module_store):
    use_store(module_store)
    model, X, background, _ = explained
    with mlflow.start_run():  # the module's approved version, explained with 2 per row
        info = log_explaining_model("models:/reg@champion", background=background, top_k=2)
    served = mlflow.pyfunc.load_model(info.model_uri)
    rows = X.iloc[300:320]
    out = served.predict(rows)
    e = shapgov.explain(model, rows, background=background)
    shap_cols = [f"shap_x{j}" for j in range(6)]
    np.testing.assert_allclose(out[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["base_value"], e.base_values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["prediction"], model.predict(rows), rtol=0, atol=1e-12)
    assert set(out["additivity_status"]) == {"pass"}
    top = np.abs(e.values).argmax(axis=1)
    assert out["pe_1_feature"].tolist() == [f"x{j}" for j in top]
    # brute force over all 2^6 coalitions through the model's own raw margin
    phi, base = brute_force_shapley(
        lambda d: model.predict(d, raw_score=True)[:, None], rows.iloc[:4], background
    )
    np.testing.assert_allclose(out[shap_cols].to_numpy()[:4], phi[:, :, 0], rtol=0, atol=1e-10)
    assert out["base_value"].iloc[0] == pytest.approx(base[0], abs=1e-10)
    # no pickle of shapgov's: the model's code, its config, background and the original flavor
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert not list(local.rglob("*.pkl")) or all("model" in p.parts for p in local.rglob("*.pkl"))
    assert (local / "explaining_model.py").exists()
    config = json.loads(next(local.rglob("config.json")).read_text())
    assert config["approved"] is True and len(config["manifest_sha256"]) == 64
    tag = mlflow.get_run(info.run_id).data.tags["shapgov.explaining_model.explaining_model"]
    assert json.loads(tag)["manifest_sha256"] == config["manifest_sha256"]


def test_an_unapproved_version_is_refused_unless_allowed(explained, module_store):
    use_store(module_store)
    _, X, background, _ = explained
    source = mlflow.MlflowClient().get_model_version("reg", "1").source  # the set's model
    mv = mlflow.register_model(source, "draft")  # a version nobody approved
    with mlflow.start_run(), pytest.raises(UnapprovedModelError, match="not approved"):
        log_explaining_model(f"models:/draft/{mv.version}", background=background)
    with mlflow.start_run():
        info = log_explaining_model(
            f"models:/draft/{mv.version}", background=background, allow_unapproved=True
        )
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert json.loads(next(local.rglob("config.json")).read_text())["approved"] is False
    with mlflow.start_run(), pytest.raises(shapgov.errors.InputError, match="background"):
        log_explaining_model(
            f"models:/draft/{mv.version}", background=X.iloc[:50], allow_unapproved=True
        )


def test_the_policy_runs_per_row(test_plugin):
    """Rows the clipping bends fail on their own; the others keep their values."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    ridge = Ridge().fit(X, y)
    upper = float(np.quantile(ridge.predict(X), 0.8))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(X, y)
    served = ServedExplainer(clipped, background=X.iloc[:80], top_k=1)
    rows = X.iloc[100:160]
    out = served.explain(rows)
    bent = ridge.predict(rows) > upper + 1e-9
    assert bent.any() and (~bent).any()
    assert (out["additivity_status"][bent] == "fail").all()
    assert out.loc[bent, [f"shap_{c}" for c in X.columns]].isna().all().all()
    assert out.loc[bent, "pe_1_feature"].isna().all()
    kept = out.loc[~bent]
    assert set(kept["additivity_status"]) <= {"pass", "warn"}
    rebuilt = kept["base_value"] + kept[[f"shap_{c}" for c in X.columns]].sum(axis=1)
    np.testing.assert_allclose(rebuilt, kept["prediction"], rtol=0, atol=1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, body: bytes, content_type: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body,
        headers={"Content-Type": content_type},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def _split(rows: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))}).encode()


@contextlib.contextmanager
def serving(model_uri: str, store: str, log_path: Path) -> Iterator[int]:
    """``mlflow models serve -m model_uri`` on a free localhost port (yielded), stopped on
    exit; its output goes to ``log_path`` (shown when it does not start)."""
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store}
    log = open(log_path, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def explained(module_store):
    """``reg`` version 1, approved, and its explaining model ``reg-explained@champion``, in
    the module's store: what :func:`server` serves; the approval test adds a version 2."""
    use_store(module_store)
    return _explaining(module_store)


@pytest.fixture(scope="module")
def server(explained, module_store, tmp_path_factory):
    """``mlflow models serve`` of the explaining model, on a free localhost port, shared by
    the module's tests that only post requests to it."""
    model, X, background, _ = explained
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serving("models:/reg-explained@champion", module_store, log) as port:
        yield port, model, X, background


def test_a_real_server_answers_json_csv_and_bad_payloads(server):
    port, model, X, background = server
    rows = X.iloc[500:510]
    e = shapgov.explain(model, rows, background=background)
    shap_cols = [f"shap_x{j}" for j in range(6)]
    for body, kind in (
        (_split(rows), "application/json"),
        (rows.to_csv(index=False).encode(), "text/csv"),
    ):
        status, payload = _post(port, body, kind)
        assert status == 200, payload
        served = pd.DataFrame(payload["predictions"])
        np.testing.assert_allclose(served[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
        assert set(served["additivity_status"]) == {"pass"}
    bad = {
        "missing column": _split(rows.drop(columns=["x3"])),
        "wrong type": _split(rows.assign(x1="high")),
        "empty": b"",
    }
    for what, body in bad.items():
        status, payload = _post(port, body, "application/json")
        assert 400 <= status < 500, (what, status, payload)
        assert payload.get("message"), what
    status, _ = _post(port, _split(rows.iloc[:1]), "application/json")
    assert status == 200  # the server lives on after bad requests


@pytest.mark.parametrize(
    "per_client",
    [pytest.param(12, id="12-each"), pytest.param(200, id="200-each", marks=pytest.mark.load)],
)
def test_concurrent_clients_lose_nothing_and_every_answer_is_additive(server, per_client):
    """Four client threads post one row at a time (12 each in the default run, 200 in the
    load run): every answer comes back, additive."""
    port, model, X, _ = server
    answers: list[tuple[int, int, pd.DataFrame]] = []
    errors: list[str] = []

    def client(c: int) -> None:
        for r in range(per_client):
            i = 1000 + (c * per_client + r) % 900
            status, payload = _post(port, _split(X.iloc[[i]]), "application/json")
            if status != 200:
                errors.append(f"{c}/{r}: {status} {payload}")
                continue
            answers.append((c, i, pd.DataFrame(payload["predictions"])))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(answers) == 4 * per_client
    for _, i, frame in answers:
        rebuilt = frame["base_value"] + frame[[f"shap_x{j}" for j in range(6)]].sum(axis=1)
        assert frame["additivity_status"].iloc[0] == "pass"
        assert abs(rebuilt.iloc[0] - model.predict(X.iloc[[i]])[0]) <= 1e-9


def test_multiclass_columns_are_named_per_class_and_rebuild_the_probabilities():
    from scipy.special import softmax
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    labels = y.map({0: "setosa", 1: "versicolor", 2: "virginica"})
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=6, verbose=-1).fit(X, labels)
    served = ServedExplainer(model, background=X.iloc[::5], top_k=2)
    out = served.explain(X.iloc[:12])
    assert list(out.columns) == served.output_columns()
    assert "shap_petal length (cm)_virginica" in out.columns
    classes = ["setosa", "versicolor", "virginica"]
    margins = np.column_stack(
        [out[f"base_value_{c}"] + out.filter(regex=f"^shap_.*_{c}$").sum(axis=1) for c in classes]
    )
    probabilities = out[[f"prediction_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(softmax(margins, axis=1), probabilities, rtol=0, atol=1e-12)
    np.testing.assert_allclose(probabilities, model.predict_proba(X.iloc[:12]), atol=1e-15)
    e = shapgov.explain(model, X.iloc[:12], background=X.iloc[::5])
    for o, c in enumerate(classes):
        shap = out[[f"shap_{f}_{c}" for f in X.columns]].to_numpy()
        np.testing.assert_allclose(shap, e.values[:, :, o], rtol=0, atol=1e-12)


def test_approval_can_require_an_explaining_model_and_the_report_lists_it(
    explained, module_store, tmp_path
):
    from shapgov.mlflow.approval import approve

    use_store(module_store)
    _, X, background, info = explained
    verdict = approve("reg", "1", require_explaining_model=True)
    assert verdict.approved, verdict.reasons
    page = shapgov.report(model="reg", version="1", out=tmp_path / "r.html").read_text()
    assert "Explaining models" in page and info.model_uri in page
    # a second version of the same model has none yet: the requirement rejects it
    with mlflow.start_run():
        model = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, X["x0"])
        shapgov.mlflow.explain_and_log(model, X.iloc[:50], background=background)
        logged = mlflow.lightgbm.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=LIGHTGBM
        )
    mv = mlflow.register_model(logged.model_uri, "reg")
    verdict = approve("reg", mv.version, require_explaining_model=True)
    assert not verdict.approved
    assert "no explaining model carries" in verdict.reasons[0]


def test_serving_refuses_plugins_the_approval_did_not_see():
    from shapgov.errors import PluginError
    from shapgov.mlflow.serving import check_plugins

    used = [{"name": "shapgov.tree", "version": "0.1.0"}]
    check_plugins(
        [{"name": "shapgov.tree", "version": "0.1.0"}, {"name": "x", "version": "1"}], used
    )
    with pytest.raises(PluginError, match=r"approved set was explained with 0\.0\.9"):
        check_plugins([{"name": "shapgov.tree", "version": "0.0.9"}], used)
    with pytest.raises(PluginError, match="explained without it"):
        check_plugins([], used)


def test_a_predict_function_written_for_dataframes_is_served_with_dataframes():
    """As ``shapgov.explain`` does, the served explainer hands a function that reads columns
    by name DataFrames with the background's columns (it got arrays before)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])

    def f(d: pd.DataFrame) -> np.ndarray:
        return (2 * d["a"] + d["b"] * d["c"]).to_numpy()

    out = ServedExplainer(f, background=X.iloc[:20]).explain(X.iloc[50:53])
    phi, _ = brute_force_shapley(lambda d: f(d)[:, None], X.iloc[50:53], X.iloc[:20])
    got = out[["shap_a", "shap_b", "shap_c"]].to_numpy()
    np.testing.assert_allclose(got, phi[:, :, 0], rtol=0, atol=1e-12)
