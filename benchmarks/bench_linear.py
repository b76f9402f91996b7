"""Benchmark: shapgov's linear explainer against shap, in the same process.

Two workloads, each checked for agreement before timing is reported:

1. margin space: Ridge behind StandardScaler, 50 features, 10,000 rows explained
   against 1,000 background rows; peer: shap.LinearExplainer (interventional).
2. probability space: soft VotingClassifier of two logistic pipelines on the breast
   cancer data (10 columns), exact values by enumerating all 2**10 coalitions; peer:
   shap.KernelExplainer at nsamples='auto', which also enumerates every coalition here.

Run: python benchmarks/bench_linear.py
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from timing import best_of

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


_time = best_of


def margin_workload() -> None:
    import shap
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shapgov

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(11_000, 50)), columns=[f"f{i}" for i in range(50)])
    y = X.to_numpy() @ rng.normal(size=50) + rng.normal(size=len(X))
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    rows, bg = X.iloc[:10_000], X.iloc[10_000:]

    t_ours, ours = _time(lambda: shapgov.explain(model, rows, background=bg))
    Z, Zb = model[0].transform(rows), model[0].transform(bg)
    peer = shap.LinearExplainer(model[-1], shap.maskers.Independent(Zb, max_samples=1000))
    t_shap, theirs = _time(lambda: peer(Z).values)
    diff = np.abs(ours.values - theirs).max()
    print(
        f"margin  | 10,000 x 50, bg 1,000 | shapgov {t_ours:.3f}s (whole pipeline, policy "
        f"included) | shap.LinearExplainer {t_shap:.3f}s (final step only) | ratio "
        f"{t_shap / t_ours:.2f}x | max |diff| {diff:.1e}"
    )


def probability_workload() -> None:
    import shap
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shapgov

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :10]
    model = VotingClassifier(
        [
            ("a", make_pipeline(StandardScaler(), LogisticRegression())),
            ("b", make_pipeline(StandardScaler(), LogisticRegression(C=0.05))),
        ],
        voting="soft",
    ).fit(X, y)
    rows, bg = X.iloc[:50], X.iloc[::10]

    t_ours, ours = _time(lambda: shapgov.explain(model, rows, background=bg))
    peer = shap.KernelExplainer(
        lambda a: model.predict_proba(pd.DataFrame(a, columns=X.columns))[:, 1], bg.to_numpy()
    )
    t_shap, theirs = _time(lambda: peer.shap_values(rows.to_numpy(), silent=True), repeat=1)
    diff = np.abs(ours.values - np.asarray(theirs)).max()
    print(
        f"proba   | 50 rows x 10 cols, bg {len(bg)} | shapgov exact {t_ours:.3f}s | "
        f"shap.KernelExplainer(auto) {t_shap:.3f}s | ratio {t_shap / t_ours:.1f}x | "
        f"max |diff| {diff:.1e}"
    )


if __name__ == "__main__":
    margin_workload()
    probability_workload()
