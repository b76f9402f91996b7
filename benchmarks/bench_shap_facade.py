"""shap and ``shapgov.shap`` on the same calls, in one process: agreement first, then time.

Cases (issue 35):

1. ``TreeExplainer`` on LightGBM and XGBoost, without data (path-dependent) and with
   100 background rows (interventional);
2. ``KernelExplainer`` on the seed's diabetes MLP (``make_pipeline(StandardScaler(),
   MLPRegressor((5,), activation='logistic', ...))``, ``KernelExplainer(model.predict,
   X_train)``, ``shap_values(X_test, nsamples=100)``): shap samples 100 coalitions, the
   facade computes every one of the 1,024 (10 features); shap is also timed at
   ``nsamples=2048``, where it enumerates every coalition and so solves the exact values;
3. ``LinearExplainer`` on a logistic regression with 100 background rows.

Agreement is the largest absolute difference between the two libraries' values (for
shap's 100-sample Kernel values, the estimate's own error). Times are the best of
``--repeats`` calls (one call for shap's Kernel runs); the ratio is shap's time over the
facade's.

Run: ``python benchmarks/bench_shap_facade.py [--repeats 3] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from timing import best_of


def report(name: str, diff: float, t_shap: float, t_ours: float) -> None:
    print(
        f"{name:<46} max|diff| {diff:9.2e}   shap {t_shap:8.3f}s   shapgov.shap {t_ours:8.3f}s"
        f"   ratio {t_shap / t_ours:6.2f}x"
    )


def _max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def trees(repeats: int, quick: bool) -> None:
    import lightgbm
    import shap
    import xgboost
    from sklearn.datasets import make_classification

    import shapgov.shap as gshap

    n = 2_000 if quick else 10_000
    X, y = make_classification(n_samples=n + 100, n_features=20, n_informative=10, random_state=0)
    X, y, background = X[:n], y[:n], X[n:]
    models = {
        "LightGBM": lightgbm.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1),
        "XGBoost": xgboost.XGBClassifier(n_estimators=200, max_depth=6, tree_method="hist"),
    }
    for name, model in models.items():
        model.fit(X, y)
        for data in (None, background):
            game = "path-dependent" if data is None else "interventional, 100 bg"
            ours = gshap.TreeExplainer(model, data)
            theirs = shap.TreeExplainer(model, data)
            rows = X if data is None else X[: n // 5]
            ours.shap_values(rows[:10])  # compile / load kernels once
            t_ours, a = best_of(lambda e=ours, r=rows: e.shap_values(r), repeats)
            t_shap, b = best_of(lambda e=theirs, r=rows: e.shap_values(r), repeats)
            report(f"Tree {name} {game}, {len(rows)} rows", _max_diff(a, b), t_shap, t_ours)


def kernel(repeats: int, quick: bool) -> None:
    import shap
    from seed_models import diabetes_mlp

    import shapgov.shap as gshap

    model, X_train, X_test = diabetes_mlp()
    rows = X_test[:20] if quick else X_test
    theirs = shap.KernelExplainer(model.predict, X_train)
    ours = gshap.KernelExplainer(model.predict, X_train)
    t_ours, a = best_of(lambda: ours.shap_values(rows), repeats)
    t_exact, exact = best_of(lambda: theirs.shap_values(rows, nsamples=2048, silent=True), 1)
    t_shap, b = best_of(lambda: theirs.shap_values(rows, nsamples=100, silent=True), 1)
    report(
        f"Kernel diabetes MLP, {len(rows)} rows, 296 bg, shap nsamples=100",
        _max_diff(a, b),
        t_shap,
        t_ours,
    )
    report(
        f"Kernel diabetes MLP, {len(rows)} rows, 296 bg, shap exact (2048)",
        _max_diff(a, exact),
        t_exact,
        t_ours,
    )


def linear(repeats: int, quick: bool) -> None:
    import shap
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import shapgov.shap as gshap

    n = 5_000 if quick else 50_000
    X, y = make_classification(n_samples=n, n_features=30, random_state=1)
    model = LogisticRegression(max_iter=500).fit(X, y)
    theirs = shap.LinearExplainer(model, X[:100])
    ours = gshap.LinearExplainer(model, X[:100])
    t_ours, a = best_of(lambda: ours.shap_values(X), repeats)
    t_shap, b = best_of(lambda: theirs.shap_values(X), repeats)
    report(f"Linear logistic regression, {n} rows, 100 bg", _max_diff(a, b), t_shap, t_ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"shap and shapgov.shap, same calls (best of {args.repeats}; ratio = shap / facade)")
    trees(args.repeats, args.quick)
    kernel(args.repeats, args.quick)
    linear(args.repeats, args.quick)


if __name__ == "__main__":
    main()
