"""Explanations over time in MLflow: the set, step metrics, the report section, the
approval rule and the command line, on a real sqlite store."""

from __future__ import annotations

import json

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from stores import use_store

import shapgov
import shapgov.mlflow
from shapgov.cli import main

SHIFT = "2024-07-01"
# Requirements declared up front: inferring them loads each model in a subprocess (~5 s).
LIGHTGBM = ["lightgbm"]


def _table(seed: int = 0, n: int = 4800) -> tuple[pd.DataFrame, np.ndarray]:
    """A year of hourly-ish rows whose x2 spread triples from ``SHIFT``; with a target."""
    rng = np.random.default_rng(seed)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 366, n)), "D")
    X = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(4)})
    X.loc[when >= pd.Timestamp(SHIFT), "x2"] *= 3
    y = (X.x0 + X.x1 * X.x2 + 0.3 * X.x3).to_numpy()
    return X.assign(when=when), y


@pytest.fixture(scope="module")
def _logged_set(module_store):
    """One explained set over time, logged with its model in the module's store; the
    module's tests read it, and those that write verdicts register a version of their own."""
    use_store(module_store)
    X, y = _table()
    train = X.drop(columns="when").iloc[:1500]
    model = lgb.LGBMRegressor(n_estimators=30, num_leaves=8, verbose=-1).fit(train, y[:1500])
    with mlflow.start_run() as run:
        e = shapgov.mlflow.explain_and_log(
            model,
            X,
            y=y,
            background=train.iloc[:200],
            analyses=["permutation"],
            over_time={"time": "when", "freq": "M"},
        )
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=LIGHTGBM)
    return run.info.run_id, info.model_uri, e, X


@pytest.fixture
def logged(_logged_set, module_store):
    use_store(module_store)
    return _logged_set


def test_the_set_holds_the_result_and_windows_are_step_metrics(logged):
    run_id, _, e, X = logged
    client = mlflow.MlflowClient()
    manifest = mlflow.artifacts.load_dict(f"runs:/{run_id}/shapgov/manifest.json")
    assert {"over_time.json", "over_time.parquet", "over_time.png"} <= set(manifest["artifacts"])
    result = mlflow.artifacts.load_dict(f"runs:/{run_id}/shapgov/over_time.json")
    assert len(result["windows"]) == 12 and result["flagged_windows"][0] == "2024-07"
    assert len(e) == len(X) and "when" not in e.feature_names
    history = client.get_metric_history(run_id, "shapgov.window.rows")
    assert [m.step for m in history] == list(range(12))
    assert [m.value for m in history] == [w["rows"] for w in result["windows"]]
    ends = [pd.Timestamp(w["end"]) for w in result["windows"]]
    assert [m.timestamp for m in history] == [t.value // 1_000_000 for t in ends]
    flagged = client.get_metric_history(run_id, "shapgov.window.flagged")
    assert next(m.step for m in flagged if m.value == 1.0) == 6
    impact = client.get_metric_history(run_id, "shapgov.window.impact.x2")
    assert len(impact) == 12
    path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov/over_time.parquet")
    assert len(pd.read_parquet(path)) == 12 * 4  # one row per window and player


def test_the_report_shows_the_section_and_the_drift(logged):
    run_id, *_ = logged
    path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov/report.html")
    with open(path, encoding="utf-8") as fh:
        html = fh.read()
    assert 'id="over_time"' in html and "Drift flagged in windows: 2024-07" in html
    assert "Holm" in html and "Wasserstein" in html


def test_approval_judges_the_impact_drift_and_records_the_rule(logged):
    _, model_uri, *_ = logged
    mv = mlflow.register_model(model_uri, "drifting")  # a version of its own for its verdicts
    loose = shapgov.approve("drifting", mv.version, max_impact_drift=1.5)
    assert loose.approved, loose.reasons
    tight = shapgov.approve("drifting", mv.version, max_impact_drift=0.05)
    assert not tight.approved
    assert any("impact drift" in r and "exceeds max_impact_drift 0.05" in r for r in tight.reasons)
    tags = mlflow.MlflowClient().get_model_version("drifting", mv.version).tags
    assert json.loads(tags["shapgov.approval.rules"])["max_impact_drift"] == 0.05
    assert tags["shapgov.approval"] == "rejected"


def test_the_rule_rejects_a_set_without_explanations_over_time(store):
    X, y = _table(1, 1200)
    X = X.drop(columns="when")
    model = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, y)
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[:100], background=X.iloc[:50], analyses=False)
        info = mlflow.lightgbm.log_model(model, name="model", pip_requirements=LIGHTGBM)
    mv = mlflow.register_model(info.model_uri, "static")
    assert shapgov.approve("static", mv.version).approved
    ruled = shapgov.approve("static", mv.version, max_impact_drift=0.5)
    assert not ruled.approved and "no explanations over time" in ruled.reasons[0]


def test_explain_and_approve_over_time_from_the_command_line(logged, tmp_path):
    _, model_uri, _, X = logged
    mv = mlflow.register_model(model_uri, "drifting")  # a version of its own for its verdicts
    uri = mlflow.get_tracking_uri()
    X.iloc[::4].to_csv(tmp_path / "scored.csv", index=False)
    runner = CliRunner()
    args = ["explain", "--model-uri", f"models:/drifting/{mv.version}", "--tracking-uri", uri]
    args += ["--data", str(tmp_path / "scored.csv"), "--sample", "1200", "--no-analyses"]
    bad = runner.invoke(main, [*args, "--freq", "M"])
    assert bad.exit_code == 2 and "--time-column" in bad.output
    done = runner.invoke(main, [*args, "--time-column", "when", "--freq", "Q"])
    assert done.exit_code == 0, done.output
    assert "explained over 4 time windows; drift flagged in windows 2024Q3, 2024Q4" in done.output
    approved = runner.invoke(
        main,
        [
            "approve",
            "drifting",
            str(mv.version),
            "--max-impact-drift",
            "0.01",
            "--tracking-uri",
            uri,
        ],
    )
    assert approved.exit_code == 1 and "impact drift" in approved.output
