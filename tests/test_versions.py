"""Champion and challenger (issue 38) on planted differences.

A logistic champion on five inputs (``a``, ``b``, ``c`` matter); challengers: one refit
without ``a`` (drops an input), one whose effect of ``b`` is doubled (coefficients set by
hand), one refit on another sample (identical up to refit noise). The comparison must name
the right inputs; the per-row difference of values sums to the output difference; the
metric intervals are a hand-rolled paired bootstrap with the same seed; PSI and KS follow
their reference formulas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import shapgov
from shapgov.analyses.comparison_stats import PSI_FLOOR, psi
from shapgov.analyses.versions import compare_versions
from shapgov.errors import ColumnMismatchError


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X.a - X.b + 0.5 * X.c)))).astype(int)
    champion = LogisticRegression().fit(X, y)
    dropped = LogisticRegression().fit(X.drop(columns=["a"]), y)
    doubled = LogisticRegression().fit(X, y)
    doubled.coef_ = champion.coef_.copy()
    doubled.coef_[0, 1] *= 2  # the effect of b doubled
    doubled.intercept_ = champion.intercept_.copy()
    refit = LogisticRegression().fit(
        X.sample(frac=0.9, random_state=1), y.sample(frac=0.9, random_state=1)
    )
    return X, y.to_numpy(), champion, {"dropped": dropped, "doubled": doubled, "refit": refit}


def test_the_comparison_names_the_planted_difference(planted):
    X, y, champion, challengers = planted
    dropped = compare_versions(champion, challengers["dropped"], X, y=y, k=2)
    top = dropped.impact.iloc[0]
    assert top["input"] == "a" and top["impact_challenger"] == 0 and top["rank_change"] < 0
    doubled = compare_versions(champion, challengers["doubled"], X, y=y, k=2)
    assert doubled.impact.iloc[0]["input"] == "b" and doubled.impact.iloc[0]["share_change"] > 0
    b = doubled.impact.set_index("input").loc["b"]
    assert b["impact_challenger"] == pytest.approx(2 * b["impact_champion"], rel=1e-10)
    # per row, b explains the difference: the doubled value minus the champion's
    assert (doubled.rows["top_inputs"].str.split(", ").str[0] == "b").all()
    refit = compare_versions(champion, challengers["refit"], X, y=y, k=2)
    # refit noise: the three inputs that matter keep their ranks (d and e, near 0, may swap)
    ranks = refit.impact.set_index("input")
    assert (ranks.loc[["a", "b", "c"], "rank_change"] == 0).all()
    assert refit.summary["top_k_overlap"] == 1.0 and refit.summary["rank_correlation"] >= 0.8
    assert refit.summary["psi"] < 0.01 < dropped.summary["psi"]
    assert abs(refit.metrics.set_index("metric").loc["roc_auc", "difference"]) < 0.01


def test_the_difference_of_values_sums_to_the_difference_of_outputs(planted):
    X, _, champion, challengers = planted
    for challenger in challengers.values():
        r = compare_versions(champion, challenger, X)
        margin_cp = champion.decision_function(X)
        margin_ch = challenger.decision_function(
            X[[c for c in X.columns if c in challenger.feature_names_in_]]
        )
        total = r.difference.sum(axis=1) + r.summary["base_difference"]
        assert np.max(np.abs(total - (margin_ch - margin_cp))) <= 1e-10
        assert r.summary["max_decomposition_error"] <= 1e-10
        # a model that does not read an input gets exactly 0 for it
        if challenger is challengers["dropped"]:
            assert np.all(r.challenger.data.columns != "a")
            assert np.all(r.difference[:, 0] == -r.champion.values[:, 0])


def test_metric_intervals_are_a_hand_rolled_paired_bootstrap(planted):
    X, y, champion, challengers = planted
    r = compare_versions(champion, challengers["dropped"], X, y=y, n_bootstrap=50, random_state=7)
    p_cp = champion.predict_proba(X)[:, 1]
    p_ch = challengers["dropped"].predict_proba(X.drop(columns=["a"]))[:, 1]
    draws = np.random.default_rng(7).integers(0, len(y), size=(50, len(y)))
    diffs = [roc_auc_score(y[i], p_ch[i]) - roc_auc_score(y[i], p_cp[i]) for i in draws]
    auc = r.metrics.set_index("metric").loc["roc_auc"]
    assert auc["champion"] == pytest.approx(roc_auc_score(y, p_cp), abs=1e-12)
    assert (auc["low"], auc["high"]) == pytest.approx(
        tuple(np.quantile(diffs, [0.025, 0.975])), abs=1e-12
    )
    assert auc["gain"] < 0 and auc["high"] < 0  # dropping a real input loses accuracy
    brier = r.metrics.set_index("metric").loc["brier"]
    assert brier["challenger"] == pytest.approx(np.mean((p_ch - y) ** 2), abs=1e-12)


def test_psi_and_ks_follow_their_reference_formulas(planted):
    X, _, champion, challengers = planted
    r = compare_versions(champion, challengers["dropped"], X)
    a, b = r.rows["score_champion"].to_numpy(), r.rows["score_challenger"].to_numpy()
    edges = np.quantile(a, np.linspace(0, 1, 11))
    p = np.histogram(np.clip(a, edges[0], edges[-1]), bins=edges)[0] / len(a)
    q = np.histogram(np.clip(b, edges[0], edges[-1]), bins=edges)[0] / len(b)
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    assert r.summary["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-6)
    ks = ks_2samp(a, b)
    assert r.summary["ks"] == {
        "statistic": pytest.approx(ks.statistic),
        "p_value": pytest.approx(ks.pvalue),
    }
    assert psi(a, a) == 0.0


def test_changed_decisions_are_listed_with_their_explaining_inputs(planted):
    X, _, champion, challengers = planted
    decision = shapgov.Decision(cutoff=0.5)
    r = compare_versions(champion, challengers["doubled"], X, decision=decision)
    changed = r.rows["declined_champion"] != r.rows["declined_challenger"]
    declined_cp = champion.predict_proba(X)[:, 1] >= 0.5
    declined_ch = challengers["doubled"].predict_proba(X)[:, 1] >= 0.5
    assert (
        r.summary["decisions_changed"]
        == int((declined_cp != declined_ch).sum())
        == int(changed.sum())
        > 0
    )
    assert (r.rows.loc[changed, "top_inputs"].str.startswith("b")).all()


def test_columns_a_model_reads_that_the_rows_lack_are_a_typed_error_unless_mapped(planted):
    X, y, champion, _ = planted
    renamed = LogisticRegression().fit(X.rename(columns={"a": "a_v2"}), y)
    with pytest.raises(ColumnMismatchError, match=r"\['a_v2'\].*columns="):
        compare_versions(champion, renamed, X)
    r = compare_versions(champion, renamed, X, columns={"a_v2": "a"})
    assert r.summary["rank_correlation"] == pytest.approx(1.0)


def test_logged_on_the_challengers_run_and_reproduced_bit_for_bit(planted, store, tmp_path):
    """Two registered versions compared by URI, logged on the challenger's run (every file
    hashed, both versions named), run again from the registry alone: identical."""
    import hashlib
    import json
    from pathlib import Path

    import mlflow

    import shapgov.mlflow
    from shapgov.mlflow.comparing import reproduce_comparison

    X, y, champion, challengers = planted
    for model in (champion, challengers["doubled"]):
        with mlflow.start_run():
            shapgov.mlflow.explain_and_log(
                model, X.iloc[:200], background=X.iloc[:100], analyses=False
            )
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        mlflow.register_model(info.model_uri, "credit")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("credit", "champion", "1")
    result = shapgov.compare_versions(
        "models:/credit@champion", "models:/credit/2", X.iloc[:600], y=y[:600],
        decision=shapgov.Decision(cutoff=0.5), n_bootstrap=30, log=True,
    )  # fmt: skip
    assert result.summary["logged_to"] == "shapgov-comparison/v1"
    assert result.impact.iloc[0]["input"] == "b"
    run_id = client.get_model_version("credit", "2").run_id
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov-comparison/v1"))
    manifest = json.loads((local / "manifest.json").read_text())
    champion_run = client.get_model_version("credit", "1").run_id
    champion_manifest = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{champion_run}/shapgov/manifest.json")
    )
    assert manifest["champion"] == {
        "name": "credit", "version": "1",
        "set_manifest_sha256": hashlib.sha256(champion_manifest.read_bytes()).hexdigest(),
    }  # fmt: skip
    assert set(manifest["artifacts"]) == {
        "comparison.json", "comparison_rows.parquet", "rows.parquet", "background.parquet"
    }  # fmt: skip
    identical, differences = reproduce_comparison("credit", 1, 2)
    assert identical, differences
    # a stored file altered afterwards is refused by its hash
    from shapgov.errors import AlteredSetError

    root = Path(mlflow.get_run(run_id).info.artifact_uri.removeprefix("file://"))
    stored = root / "shapgov-comparison" / "v1" / "background.parquet"
    kept = stored.read_bytes()
    X.iloc[:50].to_parquet(stored)
    with pytest.raises(AlteredSetError, match=r"background\.parquet"):
        reproduce_comparison("credit", 1, 2)
    stored.write_bytes(kept)
    # the challenger's report (and its documents) carry the section
    html = shapgov.report(model="credit", version=2, out=tmp_path / "r.html", log=False)
    section = html.read_text().split('<section id="challenger">', 1)[1].split("</section>", 1)[0]
    assert "against the champion v1 of credit" in section and "roc_auc" in section
    assert "<td>b</td>" in section


def test_the_challenger_rules_judge_the_logged_comparison_and_the_command_line(
    planted, store, tmp_path, monkeypatch
):
    """approve(..., against='champion') reads the comparison logged on the version's run:
    the doubled effect of b moves no input of the top 2 but costs AUC; the rules are
    recorded with the verdict. The command line compares, logs and reproduces."""
    import json

    import mlflow
    from click.testing import CliRunner

    from shapgov.cli import main

    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", "versions-tests-approval-key-0123456789")
    monkeypatch.setenv("SHAPGOV_USER", "ada")
    X, y, champion, challengers = planted
    for model in (champion, challengers["dropped"]):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        mlflow.register_model(info.model_uri, "scorecard")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("scorecard", "champion", "1")
    rows = X.iloc[:500].assign(default=y[:500])
    rows.to_parquet(tmp_path / "rows.parquet")
    out = CliRunner().invoke(
        main, ["compare", "scorecard", "@champion", "2", "--data", str(tmp_path / "rows.parquet"),
               "--target", "default", "--cutoff", "0.5"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "a: impact share" in out.output and "rank 1 -> 5" in out.output
    assert "roc_auc:" in out.output and "logged on the challenger's run" in out.output
    again = CliRunner().invoke(main, ["compare", "scorecard", "@champion", "2", "--reproduce"])
    assert again.exit_code == 0 and "bit for bit" in again.output, again.output
    verdict = shapgov.approve(
        "scorecard", 2, against="champion", max_impact_rank_change=1, min_metric_gain=0.0
    )
    assert not verdict.approved
    text = "; ".join(verdict.reasons)
    assert "input a moved from rank 1 to 5" in text and "roc_auc gain -0.0" in text
    rules = json.loads(client.get_model_version("scorecard", "2").tags["shapgov.approval.rules"])
    assert rules["against"] == "champion (version 1)" and rules["max_impact_rank_change"] == 1
    with pytest.raises(shapgov.errors.InputError, match="against"):
        shapgov.approve("scorecard", 2, min_metric_gain=0.0)


def test_over_time_the_figures_per_window(planted):
    """Rows over three months: per window, the rows, scores' PSI/KS, metrics and impact
    agreement, computed on the window's rows alone."""
    X, y, champion, challengers = planted
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(X)) % 90, "D")
    rows = X.assign(applied=when)
    r = compare_versions(champion, challengers["dropped"], rows, y=y, time="applied", k=2)
    w = r.windows.set_index("window")
    assert list(w.index) == ["2024-01", "2024-02", "2024-03"]
    jan = np.asarray(when.month == 1)
    assert w.loc["2024-01", "rows"] == jan.sum()
    p_cp = champion.predict_proba(X)[:, 1]
    p_ch = challengers["dropped"].predict_proba(X.drop(columns=["a"]))[:, 1]
    assert w.loc["2024-01", "roc_auc_champion"] == pytest.approx(
        roc_auc_score(y[jan], p_cp[jan]), abs=1e-12
    )
    assert w.loc["2024-01", "psi"] == pytest.approx(psi(p_cp[jan], p_ch[jan]), abs=1e-12)
    assert (w["roc_auc_difference"] < 0).all()
    assert "applied" not in r.impact["input"].tolist()  # the time is not an input


def test_string_classes_and_a_task_mismatch_in_either_order(planted):
    from sklearn.linear_model import Ridge

    from shapgov.errors import InputError

    X, y, champion, _ = planted
    labels = np.where(y == 1, "bad", "good")
    c1, c2 = LogisticRegression().fit(X, labels), LogisticRegression(C=0.01).fit(X, labels)
    r = compare_versions(c1, c2, X, y=labels, n_bootstrap=20)
    p = c1.predict_proba(X)[:, 1]  # of "good", the last class
    auc = r.metrics.set_index("metric").loc["roc_auc", "champion"]
    assert auc == pytest.approx(roc_auc_score(labels == "good", p), abs=1e-12)
    ridge = Ridge().fit(X, y)
    for pair in ((champion, ridge), (ridge, champion)):
        with pytest.raises(InputError, match="one task with one output"):
            compare_versions(*pair, X)
    with pytest.raises(InputError, match="not classes of the models"):
        compare_versions(c1, c2, X, y=y)
