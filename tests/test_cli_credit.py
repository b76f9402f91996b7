"""Issue 30, items 2, 6 and 8: the command line as a bank's engineer meets it, on the
credit model with category columns: the background given is used whole (and stored),
samples are announced, an approval key is one command away, a version without a set is
told what to do, and the approved set is reproduced from the registry alone."""

from __future__ import annotations

import os

import lightgbm as lgb
import mlflow
import pandas as pd
import pyarrow.parquet as pq
from click.testing import CliRunner
from credit import credit_table

from shapgov.cli import main


def test_explain_approve_verify_and_reproduce_from_the_command_line(store, tmp_path):
    X, y = credit_table(2000)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    with mlflow.start_run():
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=["lightgbm"]
        )
    mv = mlflow.register_model(info.model_uri, "credit")
    X.assign(default=y).to_parquet(tmp_path / "data.parquet")
    X.iloc[1000:1500].to_parquet(tmp_path / "bg.parquet")
    runner = CliRunner()
    uri = ["--tracking-uri", store]
    no_key = {"SHAPGOV_APPROVAL_KEY": None, "SHAPGOV_APPROVAL_KEY_FILE": None}

    rejected = runner.invoke(main, ["approve", "credit", str(mv.version), *uri], env=no_key)
    assert rejected.exit_code == 1
    assert "no shapgov artifact set" in rejected.output
    assert "explain_and_log" in rejected.output and "shapgov explain --model-uri" in rejected.output

    args = ["explain", "--model-uri", f"models:/credit/{mv.version}", *uri, "--no-analyses"]
    args += ["--data", str(tmp_path / "data.parquet"), "--target", "default"]
    explained = runner.invoke(main, [*args, "--background", str(tmp_path / "bg.parquet")])
    assert explained.exit_code == 0, explained.output
    assert "explaining 1000 of 2000 rows" in explained.output
    assert "seeded random sample (seed 0; --sample to choose)" in explained.output
    assert "background: all 500 rows of" in explained.output
    # the set stores the 500 rows, as given (categories and missing values included)
    client = mlflow.MlflowClient()
    local = client.download_artifacts(mv.run_id, "shapgov/background.parquet", str(tmp_path))
    assert pq.read_metadata(local).num_rows == 500
    from shapgov.planning.stored_background import read_background

    stored, _ = read_background(local)
    pd.testing.assert_frame_equal(stored, X.iloc[1000:1500].reset_index(drop=True))

    made = runner.invoke(main, ["keys", "new", "--out", str(tmp_path / "approval.key")])
    assert made.exit_code == 0, made.output
    assert oct(os.stat(tmp_path / "approval.key").st_mode & 0o777) == "0o600"
    assert "export SHAPGOV_APPROVAL_KEY_FILE=" in made.output
    again = runner.invoke(main, ["keys", "new", "--out", str(tmp_path / "approval.key")])
    assert again.exit_code == 2 and "never overwritten" in again.output
    key = {
        "SHAPGOV_APPROVAL_KEY": None,
        "SHAPGOV_APPROVAL_KEY_FILE": str(tmp_path / "approval.key"),
    }
    approved = runner.invoke(
        main, ["approve", "credit", str(mv.version), "--alias", "champion", *uri], env=key
    )
    assert approved.exit_code == 0 and "approved" in approved.output, approved.output
    assert "not signed" not in approved.output
    verified = runner.invoke(main, ["verify", "credit", str(mv.version), *uri], env=key)
    assert verified.exit_code == 0 and "signed by the approval key" in verified.output

    reproduced = runner.invoke(main, ["reproduce", "credit", str(mv.version), *uri])
    assert reproduced.exit_code == 0, reproduced.output
    assert "reproduced from the registry alone: 1000 rows x 8 features" in reproduced.output
    by_alias = runner.invoke(main, ["reproduce", "credit", "champion", *uri])
    assert by_alias.exit_code == 0 and "credit version 1: reproduced" in by_alias.output
    missing = runner.invoke(main, ["reproduce", "credit", "7", *uri])
    assert missing.exit_code == 2 and "no version or alias '7'" in missing.output

    # approved again without the key: the earlier signature is not left beside the verdict
    unsigned = runner.invoke(main, ["approve", "credit", str(mv.version), *uri], env=no_key)
    assert unsigned.exit_code == 0 and "not signed" in unsigned.output
    checked = runner.invoke(main, ["verify", "credit", str(mv.version), *uri], env=key)
    assert checked.exit_code == 1 and "approved without a key" in checked.output
    assert "changed by hand" not in checked.output


def test_reproduce_says_when_the_values_are_not_the_models(store, tmp_path):
    """A set explained for another model than the registered one does not reproduce."""
    import shapgov.mlflow
    from shapgov.mlflow.reproduce import reproduce

    X, y = credit_table(600)
    model = lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    other = lgb.LGBMClassifier(n_estimators=10, verbose=-1, learning_rate=0.3).fit(X, y)
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(
            other, X.iloc[:50], background=X.iloc[100:200], analyses=False
        )
        info = mlflow.lightgbm.log_model(
            model, name="model", input_example=X.iloc[:3], pip_requirements=["lightgbm"]
        )
    mv = mlflow.register_model(info.model_uri, "swapped")
    result = reproduce("swapped", mv.version)
    assert not result.reproduced and result.max_abs_difference > 1e-3
    out = CliRunner().invoke(
        main, ["reproduce", "swapped", str(mv.version), "--tracking-uri", store]
    )
    assert out.exit_code == 1 and "NOT reproduced" in out.output


def test_a_csv_with_labels_as_text_and_a_key_column_explains_the_categorical_model(store, tmp_path):
    """Issue 30 (review): a CSV carries no dtypes, so the categories come back as text;
    the CLI recodes them to those the model stored (``shapgov_stored_categories``) and
    keeps --key as the rows' keys. The values equal explaining the typed table."""
    import numpy as np

    import shapgov
    from shapgov.combination.explanation import Explanation

    X, y = credit_table(1500)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=8, verbose=-1).fit(X, y)
    with mlflow.start_run():
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=["lightgbm"])
    mv = mlflow.register_model(info.model_uri, "credit-csv")
    rows = X.iloc[:40].copy()
    rows.iloc[3, rows.columns.get_loc("purpose")] = np.nan
    rows.reset_index().assign(default=y.iloc[:40].to_numpy()).to_csv(
        tmp_path / "rows.csv", index=False
    )
    X.iloc[500:600].reset_index().to_csv(tmp_path / "bg.csv", index=False)
    args = ["explain", "--model-uri", f"models:/credit-csv/{mv.version}", "--no-analyses"]
    args += ["--data", str(tmp_path / "rows.csv"), "--target", "default", "--key"]
    args += ["applicant_id", "--background", str(tmp_path / "bg.csv"), "--tracking-uri", store]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    path = mlflow.MlflowClient().download_artifacts(
        mv.run_id, "shapgov/values.parquet", str(tmp_path)
    )
    logged = Explanation.read_parquet(path)
    assert list(logged.data.index) == list(rows.index)  # the applicant IDs, from the CSV
    typed = shapgov.explain(model, rows, background=X.iloc[500:600].reset_index(drop=True))
    np.testing.assert_allclose(logged.values, typed.values, rtol=0, atol=1e-12)


def test_a_third_party_plugin_names_the_categories_of_its_model():
    """``shapgov_stored_categories`` as a third party implements it: its answer wins over
    the built-in (trylast) one, and a table of labels as text is recoded to it."""
    import numpy as np

    from shapgov import hookimpl
    from shapgov.decomposition.encoding import as_stored_categories
    from shapgov.registry import PluginCalls, make_plugin_manager

    class Vendor:
        categories_ = ("low", "mid", "high")

    class VendorPlugin:
        @hookimpl
        def shapgov_stored_categories(self, model, plugins):
            return {"band": list(model.categories_)} if isinstance(model, Vendor) else None

    pm = make_plugin_manager()
    pm.register(VendorPlugin(), name="vendor")
    plugins = PluginCalls(pm)
    stored = plugins.first("shapgov_stored_categories", model=Vendor(), plugins=plugins)
    assert stored == {"band": ["low", "mid", "high"]}
    assert plugins.participants()[0]["name"] == "vendor"
    table = pd.DataFrame({"band": ["high", None, "extreme", "low"], "x": [1.0, 2.0, 3.0, 4.0]})
    recoded = as_stored_categories(table, stored)
    assert list(recoded["band"].cat.categories) == ["low", "mid", "high", "extreme"]
    np.testing.assert_array_equal(recoded["band"].cat.codes, [2, -1, 3, 0])
    assert recoded["x"].equals(table["x"])
