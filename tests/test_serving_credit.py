"""Issue 30, items 1, 2, 4 and 11: a bank's categorical LightGBM model served from the
registry alone, to clients that send strings and nulls, with the explained space stated.

Real parts: a sqlite registry, a real approval, MLflow's pyfunc loader, a real
``mlflow models serve`` process answering JSON, and MLflow's Spark UDF on a local Spark.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from credit import credit_table
from oracles import brute_force_shapley
from stores import use_store
from test_serving import _post, serving

import shapgov
import shapgov.mlflow
from shapgov.errors import InputError, UnapprovedModelError
from shapgov.mlflow.serving import log_explaining_model
from shapgov.planning.stored_background import read_background

NAME = "credit-default"


def _fit(seed: int = 0):
    X, y = credit_table(2000, seed=seed)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    return X, y, model


def _approved_credit(
    store, *, name: str = NAME, output: str = "margin", weights=None, log_set: bool = True
):
    """The credit model explained against a 500-row background, logged with its own
    flavor (mlflow.sklearn refuses LightGBM under MLflow 3's trusted types), registered
    as ``name`` and approved (alias champion)."""
    X, y, model = _fit()
    background = X.iloc[1000:1500]
    with mlflow.start_run():
        if log_set:  # no analyses: approval needs none, and the suite's time is counted
            shapgov.mlflow.explain_and_log(
                model,
                X.iloc[:100],
                analyses=False,
                background=background,
                background_weights=weights,
                output=output,
            )
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=["lightgbm"]
        )
    mv = mlflow.register_model(info.model_uri, name)
    if log_set:
        assert shapgov.approve(name, mv.version, alias="champion").approved
    return X, y, model, background, mv


def _as_client_sends(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows as JSON carries them: the key as a column, categories as strings."""
    out = rows.reset_index()
    for c in ("home_ownership", "purpose"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


@pytest.fixture(scope="module")
def registry(module_store):
    """One sqlite registry for this module's tests (each registers its own names), so the
    approved credit model and its explaining model are built once."""
    use_store(module_store)
    return module_store


@pytest.fixture(scope="module")
def explaining(registry):
    """The approved credit model and its explaining model, logged without a background
    (the set's own) and with the applicant ID as a key."""
    X, _, model, background, mv = _approved_credit(registry)
    with mlflow.start_run():
        info = log_explaining_model(
            f"models:/{NAME}@champion", keys=["applicant_id"], registered_model_name="served"
        )
    return X, model, background, mv, info


def test_the_set_stores_its_background_and_serving_reads_it(explaining):
    X, model, background, mv, info = explaining
    client = mlflow.MlflowClient()
    manifest = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/shapgov/manifest.json")
    assert "background.parquet" in manifest["artifacts"]
    path = client.download_artifacts(mv.run_id, "shapgov/background.parquet", ".")
    stored, weights = read_background(path, sha256=manifest["game"]["background_sha256"])
    pd.testing.assert_frame_equal(stored, background.reset_index(drop=True))
    assert weights is None
    # no background= was needed: the explaining model took the set's own rows
    rows = X.iloc[300:306]
    served = mlflow.pyfunc.load_model(info.model_uri).predict(rows)  # category dtypes
    assert served["applicant_id"].tolist() == list(rows.index)  # the key held as the index
    e = shapgov.explain(model, rows, background=background)
    shap_cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(served[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    # and a background that is not the set's is refused
    with mlflow.start_run(), pytest.raises(InputError, match="not the one"):
        log_explaining_model(f"models:/{NAME}@champion", background=X.iloc[:500])


def test_an_altered_background_file_is_refused(tmp_path):
    X, _, model = _fit()
    e = shapgov.explain(model, X.iloc[:20], background=X.iloc[100:200])
    from shapgov.planning.stored_background import write_background

    path = write_background(tmp_path / "bg.parquet", e.background)
    read_background(path, sha256=e.game["background_sha256"])  # the game's rows: fine
    other = write_background(tmp_path / "other.parquet", X.iloc[100:199])
    with pytest.raises(InputError, match="hash"):
        read_background(other, sha256=e.game["background_sha256"])


def test_strings_nulls_and_unseen_labels_are_recoded_as_the_model_does(explaining):
    X, model, background, _, info = explaining
    served = mlflow.pyfunc.load_model(info.model_uri)
    rows = X.iloc[400:410].copy()
    sent = _as_client_sends(rows)
    sent.loc[0, "purpose"] = "crypto"  # a label the model never saw: LightGBM reads missing
    sent.loc[1, "home_ownership"] = None
    sent.loc[2, "employment_length"] = np.nan
    out = served.predict(sent)
    assert out["applicant_id"].tolist() == list(rows.index)
    # the model's own answer on the same applicants, as LightGBM reads them
    truth = rows.copy()
    truth.loc[truth.index[0], "purpose"] = np.nan
    truth.loc[truth.index[1], "home_ownership"] = np.nan
    truth.loc[truth.index[2], "employment_length"] = np.nan
    np.testing.assert_allclose(out["prediction"], model.predict_proba(truth)[:, 1], atol=1e-12)
    e = shapgov.explain(model, truth, background=background)
    shap_cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(out[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    phi, _ = brute_force_shapley(
        lambda d: model.predict(d, raw_score=True)[:, None], truth.iloc[:3], background
    )
    np.testing.assert_allclose(out[shap_cols].to_numpy()[:3], phi[:, :, 0], rtol=0, atol=1e-10)
    # the units are stated: base + sum SHAP is the log-odds of the prediction
    assert set(out["explained_space"]) == {"margin"} and set(out["link"]) == {"logit"}
    rebuilt = out["base_value"] + out[shap_cols].sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-rebuilt)), out["prediction"], atol=1e-12)


def test_a_set_explained_in_probability_space_is_served_in_probability(registry):
    X, _, model, _, _ = _approved_credit(registry, name="in-probability", output="probability")
    with mlflow.start_run():
        info = log_explaining_model("models:/in-probability@champion")
    out = mlflow.pyfunc.load_model(info.model_uri).predict(X.iloc[500:505])
    shap_cols = [f"shap_{c}" for c in X.columns]
    assert set(out["explained_space"]) == {"probability"} and set(out["link"]) == {"identity"}
    rebuilt = out["base_value"] + out[shap_cols].sum(axis=1)
    np.testing.assert_allclose(rebuilt, out["prediction"], atol=1e-12)
    np.testing.assert_allclose(
        out["prediction"], model.predict_proba(X.iloc[500:505])[:, 1], atol=1e-12
    )


def test_a_weighted_background_is_served_with_its_weights(registry):
    weights = np.linspace(1.0, 3.0, 500)
    X, _, model, background, _ = _approved_credit(registry, name="weighted", weights=weights)
    with mlflow.start_run():
        info = log_explaining_model("models:/weighted@champion")
    out = mlflow.pyfunc.load_model(info.model_uri).predict(X.iloc[600:604])
    e = shapgov.explain(model, X.iloc[600:604], background=background, background_weights=weights)
    shap_cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(out[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    with mlflow.start_run(), pytest.raises(InputError, match="weighted"):
        log_explaining_model("models:/weighted@champion", background=background)


def test_a_version_without_a_set_is_served_only_when_allowed_with_a_background(registry):
    X, _, model, background, mv = _approved_credit(registry, name="no-set", log_set=False)
    uri = f"models:/no-set/{mv.version}"
    with mlflow.start_run(), pytest.raises(UnapprovedModelError, match="explain_and_log"):
        log_explaining_model(uri)
    with mlflow.start_run(), pytest.raises(InputError, match="background="):
        log_explaining_model(uri, allow_unapproved=True)
    with mlflow.start_run():
        info = log_explaining_model(uri, background=background, allow_unapproved=True)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    config = json.loads(next(local.rglob("config.json")).read_text())
    assert config["approved"] is False and config["backed_by_set"] is False
    assert config["game"]["background_sha256"]
    out = mlflow.pyfunc.load_model(info.model_uri).predict(X.iloc[:3])
    e = shapgov.explain(model, X.iloc[:3], background=background)
    np.testing.assert_allclose(out[[f"shap_{c}" for c in X.columns]], e.values, atol=1e-12)


@pytest.fixture
def credit_server(registry, explaining, tmp_path):
    """``mlflow models serve`` of the credit model's explaining model."""
    X, model, background, _, _ = explaining
    with serving("models:/served/1", registry, tmp_path / "serve.log") as port:
        yield port, X, model, background


def test_a_real_server_takes_json_strings_and_nulls_for_categories(credit_server):
    port, X, model, background = credit_server
    rows = X.iloc[700:708]
    sent = _as_client_sends(rows)
    sent.loc[3, "home_ownership"] = None
    sent["employment_length"] = sent["employment_length"].astype(object)
    sent.loc[4, "employment_length"] = None
    body = json.dumps(
        {"dataframe_split": json.loads(sent.to_json(orient="split", index=False))}
    ).encode()
    status, payload = _post(port, body, "application/json")
    assert status == 200, payload
    got = pd.DataFrame(payload["predictions"])
    assert got["applicant_id"].tolist() == list(rows.index)
    truth = rows.copy()
    truth.loc[truth.index[3], "home_ownership"] = np.nan
    truth.loc[truth.index[4], "employment_length"] = np.nan
    e = shapgov.explain(model, truth, background=background)
    shap_cols = [f"shap_{c}" for c in X.columns]
    np.testing.assert_allclose(got[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["prediction"], model.predict_proba(truth)[:, 1], atol=1e-12)
    assert set(got["explained_space"]) == {"margin"} and set(got["link"]) == {"logit"}
    # the same rows as CSV (strings and empty cells), as a spreadsheet export sends them
    status, payload = _post(port, sent.to_csv(index=False).encode(), "text/csv")
    assert status == 200, payload
    as_csv = pd.DataFrame(payload["predictions"])
    np.testing.assert_allclose(as_csv[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)
    assert as_csv["applicant_id"].tolist() == list(rows.index)
    # bad requests: 4xx that name the column (MLflow's scoring server puts the request
    # itself in front of the message: it goes back to the client that sent it)
    for bad, said in (
        (sent.assign(delinquencies="many"), "delinquencies"),
        (sent.drop(columns=["purpose"]), "missing ['purpose']"),
        (sent.assign(applicant_name="A. Smith"), "unexpected ['applicant_name']"),
    ):
        body = json.dumps({"dataframe_split": json.loads(bad.to_json(orient="split", index=False))})
        status, payload = _post(port, body.encode(), "application/json")
        assert 400 <= status < 500, (said, status, payload)
        assert said in payload.get("message", ""), payload


def test_a_set_explained_as_a_whole_is_served_and_reproduced_in_its_own_game(registry):
    """opaque=True and the explainers' options are part of how a set was explained: the
    explaining model and shapgov reproduce replay them (Kernel sampling, its budget)."""
    from sklearn.neural_network import MLPRegressor

    from shapgov.mlflow.reproduce import reproduce

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 16)), columns=[f"x{j}" for j in range(16)])
    y = X["x0"] * X["x1"] + np.sin(X["x2"])
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=300, random_state=0).fit(X, y)
    options = {"kernel": {"n_samples": 400}}
    with mlflow.start_run():
        e = shapgov.mlflow.explain_and_log(
            model, X.iloc[:4], background=X.iloc[100:105], opaque=True,
            explainer_options=options, analyses=False,
        )  # fmt: skip
        info = mlflow.sklearn.log_model(
            model, name="model", pip_requirements=["scikit-learn"],
            skops_trusted_types=["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"],
        )  # fmt: skip
    assert e.game["opaque"] is True and e.game["explainer_options"] == options
    assert e.std_error is not None  # sampled: 16 columns, beyond exact enumeration
    mv = mlflow.register_model(info.model_uri, "mlp-opaque")
    assert shapgov.approve("mlp-opaque", mv.version, alias="champion").approved
    again = reproduce("mlp-opaque", "champion")  # an alias names the version too
    assert again.reproduced and again.max_abs_difference <= 1e-12, again.describe()
    with mlflow.start_run():
        served = log_explaining_model("models:/mlp-opaque@champion")
    out = mlflow.pyfunc.load_model(served.model_uri).predict(X.iloc[:4])
    shap_cols = [f"shap_x{j}" for j in range(16)]
    np.testing.assert_allclose(out[shap_cols].to_numpy(), e.values, rtol=0, atol=1e-12)


def test_a_set_explained_with_an_offset_is_not_served_without_it(registry):
    X, _, model = _fit()
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:50], background=X.iloc[100:200], offset=0.3, analyses=False
        )
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
    mv = mlflow.register_model(info.model_uri, "with-offset")
    assert shapgov.approve("with-offset", mv.version, alias="champion").approved
    with mlflow.start_run(), pytest.raises(InputError, match="offset"):
        log_explaining_model("models:/with-offset@champion")
