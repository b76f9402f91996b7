"""Fair-lending checks (issue 37) against hand calculations on data with a planted answer.

A logistic model of default on three inputs: ``zip_risk`` carries a planted difference
between the protected groups (group B's is higher by 1.2 standard deviations), ``income``
and ``debt`` are independent of the groups. The protected attribute is not an input. So
group B is declined more often, the gap runs through ``zip_risk``, and ``zip_risk`` is a
proxy for the group while ``income`` is not.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from scipy.stats.contingency import relative_risk
from sklearn.linear_model import LogisticRegression

import shapgov
from shapgov.analyses.fairness import SmallGroupWarning, fairness
from shapgov.analyses.fairness_stats import difference_of_rates, proxy_score, ratio_of_rates
from shapgov.errors import InputError, ProtectedAttributeError

CUTOFF = 0.4


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    n = 3000
    group = rng.choice(["A", "B"], size=n, p=[0.7, 0.3])
    X = pd.DataFrame(
        {
            "zip_risk": rng.normal(size=n) + 1.2 * (group == "B"),
            "income": rng.normal(size=n),
            "debt": rng.normal(size=n),
        }
    )
    margin = -1 + X["zip_risk"] - 0.8 * X["income"] + 0.5 * X["debt"]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-margin))).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    e = shapgov.explain(model, X, background=X.iloc[:200])
    protected = pd.DataFrame({"group": group})
    result = fairness(e, protected=protected, decision=shapgov.Decision(cutoff=CUTOFF), y=y)
    return model, X, y, e, protected, result


def test_rates_and_the_adverse_impact_ratio_equal_hand_calculations(planted):
    model, X, _y, e, protected, f = planted
    declined = model.predict_proba(X)[:, 1] >= CUTOFF
    b, a = protected["group"] == "B", protected["group"] == "A"
    row = f.groups.set_index("group").loc["B"]
    assert row["reference"] == "A"  # the highest approval rate
    assert row["n"] == b.sum() and row["approved"] == (~declined[b]).sum()
    air = (~declined[b]).mean() / (~declined[a]).mean()
    assert row["air"] == pytest.approx(air, rel=1e-12)
    # the Katz interval, as scipy computes the relative risk's
    ci = relative_risk(
        int((~declined[b]).sum()), int(b.sum()), int((~declined[a]).sum()), int(a.sum())
    ).confidence_interval(0.95)
    assert (row["air_low"], row["air_high"]) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert row["air"] < 0.8 and row["flagged"]
    # the gap: difference of mean margins, exactly the sum of the mean SHAP differences
    margin = e.explained_output[:, 0]
    assert row["gap"] == pytest.approx(margin[b].mean() - margin[a].mean(), abs=1e-12)
    gaps = f.gaps[f.gaps["group"] == "B"]
    assert abs(gaps["contribution"].sum() - row["gap"]) <= 1e-10
    assert gaps.iloc[0]["player"] == "zip_risk" and gaps.iloc[0]["rank"] == 1
    assert f.summary["flagged_groups"][0]["top_inputs"][0] == "zip_risk"


def test_error_rates_and_their_newcombe_intervals_equal_hand_calculations(planted):
    model, X, y, _, protected, f = planted
    declined = model.predict_proba(X)[:, 1] >= CUTOFF
    b, a = (protected["group"] == "B").to_numpy(), (protected["group"] == "A").to_numpy()
    row = f.groups.set_index("group").loc["B"]
    fp_b, n_b = int(declined[b & (y == 0)].sum()), int((b & (y == 0)).sum())
    fp_a, n_a = int(declined[a & (y == 0)].sum()), int((a & (y == 0)).sum())
    assert row["fpr"] == pytest.approx(fp_b / n_b, rel=1e-12)
    # Newcombe (1998) method 10 from scipy's Wilson intervals
    w_b = binomtest(fp_b, n_b).proportion_ci(0.95, method="wilson")
    w_a = binomtest(fp_a, n_a).proportion_ci(0.95, method="wilson")
    p_b, p_a = fp_b / n_b, fp_a / n_a
    low = p_b - p_a - np.sqrt((p_b - w_b.low) ** 2 + (w_a.high - p_a) ** 2)
    high = p_b - p_a + np.sqrt((w_b.high - p_b) ** 2 + (p_a - w_a.low) ** 2)
    assert (row["fpr_diff"], row["fpr_low"], row["fpr_high"]) == pytest.approx(
        (p_b - p_a, low, high), rel=1e-10
    )
    fn_b = int((~declined[b & (y == 1)]).sum())
    assert row["fnr"] == pytest.approx(fn_b / (b & (y == 1)).sum(), rel=1e-12)
    assert row["observed_rate"] == pytest.approx(y[b].mean(), rel=1e-12)


def test_the_planted_proxy_is_flagged_and_listed_first_an_independent_input_is_not(planted):
    *_, f = planted
    proxies = f.proxies.set_index("input")
    assert proxies.loc["zip_risk", "flagged"] and proxies.loc["zip_risk", "order"] == 1
    assert (
        proxies.loc["zip_risk", "score"] > 0.75
        and proxies.loc["zip_risk", "shap_proxy_score"] > 0.75
    )
    assert not proxies.loc["income", "flagged"] and proxies.loc["income", "score"] < 0.56
    assert not proxies.loc["debt", "flagged"]


def test_no_flags_at_the_stated_rate_on_200_null_repeats(planted):
    """Groups drawn independently of everything (200 seeds): the family-wise false-alarm
    rate of the group flag is at most alpha = 0.05 by construction; observed here."""
    _, _, _y, e, _, _ = planted
    flags = proxies = 0
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        labels = pd.DataFrame({"g": rng.choice(["x", "y", "z"], size=len(e), p=[0.5, 0.3, 0.2])})
        f = fairness(e, protected=labels, decision=shapgov.Decision(cutoff=CUTOFF))
        flags += bool(f.groups["flagged"].any())
        proxies += bool(f.proxies["flagged"].any())
    assert flags <= 0.05 * 200 and proxies == 0
    print(f"null repeats: {flags} of 200 results with a flagged group, {proxies} with a proxy")


def test_the_statistics_match_their_definitions_on_small_counts():
    ratio, low, high, p = ratio_of_rates(30, 60, 45, 60, 0.95)
    ci = relative_risk(30, 60, 45, 60).confidence_interval(0.95)
    assert ratio == pytest.approx(30 / 45) and (low, high) == pytest.approx((ci.low, ci.high))
    assert 0 < p < 0.05  # a ratio of 2/3 on 60 rows each is significant
    # a group with no approval: Haldane's 0.5 keeps the interval finite
    assert np.isfinite(ratio_of_rates(0, 10, 8, 10, 0.95)[1:3]).all()
    d, lo, hi = difference_of_rates(5, 50, 5, 50, 0.95)
    assert d == 0 and lo < 0 < hi
    rng = np.random.default_rng(3)
    member = rng.uniform(size=1000) < 0.3
    assert (
        proxy_score(pd.Series(member.astype(float) + rng.normal(size=1000) * 0.1), member, 0) > 0.95
    )
    assert proxy_score(pd.Series(rng.normal(size=1000)), member, 0) < 0.58
    labels = pd.Series(np.where(member, "p", "q")).astype("category")
    assert proxy_score(labels, member, 0) == 1.0  # a category that is the group


def test_small_groups_are_reported_with_a_warning_never_flagged(planted):
    _, _, _, e, protected, _ = planted
    labels = protected.copy()
    labels.loc[labels.index[:10], "group"] = "C"  # 10 rows
    with pytest.warns(SmallGroupWarning, match="'C'"):
        f = fairness(e, protected=labels, decision=shapgov.Decision(cutoff=CUTOFF))
    c = f.groups.set_index("group").loc["C"]
    assert c["small"] and not c["flagged"]


def test_bad_protected_tables_are_typed_errors(planted):
    model, X, _, e, protected, _ = planted
    decision = shapgov.Decision(cutoff=CUTOFF)
    cases = [
        (protected.iloc[:-1], "rows for"),
        (protected.set_index(protected.index + 1), "index differs"),
        (pd.DataFrame({"g": ["A"] * len(X)}), "single group"),
        (protected.assign(group=protected["group"].where(protected.index != 3)), "missing"),
        (pd.DataFrame({"income": protected["group"]}), "are model inputs"),
        ("group", "DataFrame"),
    ]
    for table, message in cases:
        with pytest.raises(ProtectedAttributeError, match=message):
            fairness(e, protected=table, decision=decision)
    with pytest.raises(InputError, match="does not occur"):
        fairness(e, protected=protected, decision=decision, reference={"group": "Z"})
    with pytest.raises(InputError, match="air_threshold"):
        fairness(e, protected=protected, decision=decision, air_threshold=1.5)
    # a model is explained first; an explanation takes no X
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = fairness(model, X, protected=protected, decision=decision, background=X.iloc[:200])
    assert (
        again.groups["air"].tolist()
        == fairness(e, protected=protected, decision=decision).groups["air"].tolist()
    )
    with pytest.raises(InputError, match="only with a model"):
        fairness(e, X, protected=protected, decision=decision)


def test_logged_reported_and_judged_by_the_approval_rules(planted, store, monkeypatch):
    """The set holds the checks (not the protected table), the report shows the section
    with the flagged group and the input carrying its gap, and the approval rules reject
    on the planted gap and proxy with their reasons recorded."""
    import json
    from pathlib import Path

    import mlflow

    import shapgov.mlflow
    from shapgov.sinks.compliance import REPORT

    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", "fairness-tests-approval-key-0123456789")
    monkeypatch.setenv("SHAPGOV_USER", "ada")
    model, X, y, _, protected, f = planted
    decision = shapgov.Decision(cutoff=CUTOFF)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, X, y=y, background=X.iloc[:200], analyses=False,
            fairness={"protected": protected, "decision": decision},
        )  # fmt: skip
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/shapgov"))
    manifest = json.loads((local / "manifest.json").read_text())
    listed = set(manifest["artifacts"])
    assert {"fairness.json", "fairness_groups.parquet", "fairness_gaps.parquet"} <= listed
    summary = json.loads((local / "fairness.json").read_text())
    assert summary["protected_sha256"] == f.summary["protected_sha256"]
    assert summary["group_counts"]["group"] == protected["group"].value_counts().to_dict()
    stored = pd.read_parquet(local / "fairness_groups.parquet").set_index("group")
    assert stored.loc["B", "air"] == pytest.approx(f.groups.set_index("group").loc["B", "air"])
    assert not any("protected" in name for name in listed)  # only its hash and counts
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert metrics["shapgov.fairness.min_air"] == pytest.approx(summary["min_air"])
    html = (local / REPORT).read_text()
    section = html.split('<section id="fairness">', 1)[1].split("</section>", 1)[0]
    assert "Disparate impact flagged for B (group" in section
    assert "the gap runs mostly through zip_risk" in section
    executive = html.split('<section id="executive"', 1)[1].split("</section>", 1)[0]
    assert ">Fair lending</dt>" in executive and 'href="#fairness"' in executive
    mv = mlflow.register_model(info.model_uri, "fair")
    plain = shapgov.approve("fair", mv.version)
    assert plain.approved  # the checks are reported; rules judge them only when asked
    judged = shapgov.approve("fair", mv.version, min_adverse_impact_ratio=0.8, max_proxy_score=0.7)
    assert not judged.approved
    text = "; ".join(judged.reasons)
    assert "adverse impact ratio 0.5" in text and "group B" in text
    assert "input zip_risk is a proxy for group" in text
    tags = mlflow.MlflowClient().get_model_version("fair", mv.version).tags
    rules = json.loads(tags["shapgov.approval.rules"])
    assert rules["min_adverse_impact_ratio"] == 0.8 and rules["max_proxy_score"] == 0.7
    with pytest.raises(InputError, match="min_adverse_impact_ratio"):
        shapgov.approve("fair", mv.version, min_adverse_impact_ratio=1.5)


def test_over_time_the_gap_is_flagged_in_the_windows_where_it_appears(planted, store):
    """Months 1-3: group B drawn at random (no gap); months 4-6: B is the applicants with
    the highest zip_risk. Per window (step metrics, a table and a chart in the set), only
    the later windows are flagged, under one Holm correction."""
    import json
    from pathlib import Path

    import mlflow

    import shapgov.mlflow

    model, X, y, _, _, _ = planted
    rng = np.random.default_rng(9)
    month = np.repeat(np.arange(6), len(X) // 6)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(month * 30 + 5, "D")
    late = month >= 3
    random_b = rng.random(len(X)) < 0.3
    risky_b = X["zip_risk"].to_numpy() > np.quantile(X["zip_risk"], 0.7)
    groups = pd.DataFrame({"group": np.where(np.where(late, risky_b, random_b), "B", "A")})
    rows = X.assign(applied=when)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, rows, y=y, background=X.iloc[:200], analyses=False,
            over_time={"time": "applied", "freq": "M"},
            fairness={"protected": groups, "decision": shapgov.Decision(cutoff=CUTOFF)},
        )  # fmt: skip
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/shapgov"))
    manifest = json.loads((local / "manifest.json").read_text())
    assert {"fairness_windows.parquet", "fairness_over_time.png"} <= set(manifest["artifacts"])
    windows = pd.read_parquet(local / "fairness_windows.parquet")
    b = windows[windows["group"] == "B"].reset_index(drop=True)
    assert len(b) == 6 and b["window"].tolist() == sorted(b["window"])
    assert not b.loc[:2, "flagged"].any() and b.loc[3:, "flagged"].all()
    assert (b.loc[3:, "air"] < 0.8).all() and (b.loc[:2, "air"] > 0.8).all()
    summary = json.loads((local / "fairness.json").read_text())
    assert summary["flagged_windows"] == b.loc[3:, "window"].tolist()
    history = mlflow.MlflowClient().get_metric_history(
        run.info.run_id, "shapgov.fairness.window_min_air"
    )
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(6))
    assert sorted(history, key=lambda m: m.step)[4].value == pytest.approx(b.loc[4, "air"])
    html = (local / "report.html").read_text()
    section = html.split('<section id="fairness">', 1)[1].split("</section>", 1)[0]
    assert "<h3>Over time</h3>" in section and "flagged in windows " + b.loc[3, "window"] in section


def test_the_gap_decomposes_over_grouped_players_exactly(planted):
    """With players grouped ({zip_risk, debt} as one), the gap is the sum of the players'
    mean value differences, exactly, and the group holding zip_risk carries it."""
    model, X, _, _e, protected, f = planted
    grouped = shapgov.explain_groups(
        model, X, players={"area": ["zip_risk", "debt"]}, background=X.iloc[:200],
        member_sums=True,
    )  # fmt: skip
    g = fairness(grouped, protected=protected, decision=shapgov.Decision(cutoff=CUTOFF))
    gaps = g.gaps[g.gaps["group"] == "B"]
    gap = g.groups.set_index("group").loc["B", "gap"]
    assert set(gaps["player"]) == {"area", "income"}
    assert abs(gaps["contribution"].sum() - gap) <= 1e-10
    assert gaps.iloc[0]["player"] == "area"
    assert gap == pytest.approx(f.groups.set_index("group").loc["B", "gap"], abs=1e-12)


def test_the_positive_class_decides_the_score_and_bad_outcomes_are_typed_errors(planted):
    """A binary model with string classes: the score is the probability of the named
    class (the other class's is one minus it), hand-checked; a class the model lacks, a
    multiclass model without positive_class, a probability asked of a regressor and a
    continuous y are typed errors."""
    from sklearn.linear_model import Ridge

    _, X, y, _, protected, _ = planted
    labels = np.where(y == 1, "bad", "good")
    model = LogisticRegression().fit(X, labels)  # classes_: ['bad', 'good']
    e = shapgov.explain(model, X, background=X.iloc[:200])
    p_bad = model.predict_proba(X)[:, 0]
    f = fairness(
        e,
        protected=protected,
        decision=shapgov.Decision(cutoff=CUTOFF, positive_class="bad"),
        y=labels,
    )
    b = (protected["group"] == "B").to_numpy()
    row = f.groups.set_index("group").loc["B"]
    assert row["mean_score"] == pytest.approx(p_bad[b].mean(), rel=1e-12)
    assert row["approval_rate"] == pytest.approx((p_bad[b] < CUTOFF).mean(), rel=1e-12)
    assert row["observed_rate"] == pytest.approx((labels[b] == "bad").mean(), rel=1e-12)
    with pytest.raises(InputError, match="not one of the classes"):
        fairness(
            e, protected=protected, decision=shapgov.Decision(cutoff=0.5, positive_class="ugly")
        )
    with pytest.raises(InputError, match="not the model's classes"):
        fairness(e, protected=protected, decision=shapgov.Decision(cutoff=0.5), y=y)
    three = np.where(X["income"] > 0.5, "hi", np.where(X["income"] < -0.5, "lo", "mid"))
    em = shapgov.explain(LogisticRegression().fit(X, three), X, background=X.iloc[:100])
    with pytest.raises(InputError, match="positive_class"):
        fairness(em, protected=protected, decision=shapgov.Decision(cutoff=0.5))
    er = shapgov.explain(Ridge().fit(X, X["income"]), X, background=X.iloc[:100])
    with pytest.raises(InputError, match="score='prediction'"):
        fairness(er, protected=protected, decision=shapgov.Decision(cutoff=0.0))
    regression = shapgov.Decision(cutoff=0.0, score="prediction")
    with pytest.raises(InputError, match="event indicator"):
        fairness(er, protected=protected, decision=regression, y=X["income"].to_numpy())
