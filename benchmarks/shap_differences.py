"""What shap and ``shapgov.shap`` give on the same two calls, against brute force: the
figures the README's "shap's API" section quotes.

1. A soft-voting classifier (LightGBM + logistic regression, 12 features): shap's
   ``TreeExplainer`` refuses it; ``shap.Explainer(model.predict_proba, masker)`` falls
   back to permutation sampling (more than 10 features). The facade's ``TreeExplainer``
   decomposes it and explains the averaged probability exactly.
2. A binary LightGBM classifier explained in probability space
   (``TreeExplainer(model, data, model_output="probability")``), with shap's additivity,
   its error against one background row, and its raw-margin values for comparison.
3. The row where shap's and the facade's interventional LightGBM values differ in
   ``bench_shap_facade.py``, against brute force over all 2^20 coalitions.

Brute force is the interventional game's Shapley formula over all 4,096 coalitions, each
evaluated through the model's own ``predict_proba`` (``tests/oracles.py`` holds the same
definition for the tests).

Run: ``python benchmarks/shap_differences.py``
"""

from __future__ import annotations

import itertools
import math
import os
import warnings

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def brute_force(f, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Interventional Shapley values ``(n, M)`` of ``f`` (one output) by the definition."""
    n, m = X.shape
    value = {}
    for size in range(m + 1):
        for S in itertools.combinations(range(m), size):
            cols = list(S)
            rows = np.repeat(B[None], n, axis=0)  # (n, b, m)
            rows[:, :, cols] = X[:, None, cols]
            value[S] = f(rows.reshape(-1, m)).reshape(n, len(B)).mean(axis=1)
    phi = np.zeros((n, m))
    for j in range(m):
        others = [i for i in range(m) if i != j]
        for size in range(m):
            w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for S in itertools.combinations(others, size):
                phi[:, j] += w * (value[tuple(sorted((*S, j)))] - value[S])
    return phi


def main() -> None:
    import lightgbm
    import shap
    from sklearn.datasets import make_classification
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression

    import shapgov.shap as gshap

    warnings.simplefilter("ignore")
    X, y = make_classification(n_samples=2_000, n_features=12, n_informative=8, random_state=0)
    B, rows = X[:50], X[100:120]
    lgbm = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=15, verbose=-1)

    vote = VotingClassifier(
        [("gbm", lgbm), ("lr", LogisticRegression(max_iter=1000))], voting="soft"
    ).fit(X, y)
    p1 = lambda d: vote.predict_proba(d)[:, 1]  # noqa: E731
    exact = brute_force(p1, rows, B)
    try:
        shap.TreeExplainer(vote)
        refused = "accepted"
    except Exception as err:
        refused = f"refused ({type(err).__name__})"
    sampled = shap.Explainer(vote.predict_proba, shap.maskers.Independent(B), seed=0)(rows)
    theirs = sampled.values[..., 1]
    ours = gshap.TreeExplainer(vote, B, model_output="probability").shap_values(rows)
    print("1. soft-voting classifier (LightGBM + logistic regression), 12 features, 20 rows, 50 bg")
    print(f"   shap.TreeExplainer: {refused}")
    print(
        f"   shap.Explainer (permutation sampling): max |value - brute force| = "
        f"{np.abs(theirs - exact).max():.3g}"
    )
    print(
        f"   shapgov.shap.TreeExplainer: max |value - brute force| = "
        f"{np.abs(ours - exact).max():.3g}"
    )

    lgbm.fit(X, y)
    p1 = lambda d: lgbm.predict_proba(d)[:, 1]  # noqa: E731
    exact = brute_force(p1, rows, B)
    theirs = shap.TreeExplainer(lgbm, B, model_output="probability").shap_values(rows)
    ours = gshap.TreeExplainer(lgbm, B, model_output="probability").shap_values(rows)
    explainer = shap.TreeExplainer(lgbm, B, model_output="probability")
    adds = np.abs(theirs.sum(1) + explainer.expected_value - p1(rows)).max()
    one = shap.TreeExplainer(lgbm, B[:1], model_output="probability").shap_values(rows)
    one_exact = brute_force(p1, rows, B[:1])
    raw = lambda d: lgbm.predict(d, raw_score=True)  # noqa: E731
    raw_theirs = shap.TreeExplainer(lgbm, B, model_output="raw").shap_values(rows[:5])
    raw_exact = brute_force(raw, rows[:5], B)
    print("2. LightGBM binary classifier, probability output, 20 rows, 50 bg")
    print(
        f"   shap.TreeExplainer: max |value - brute force| = {np.abs(theirs - exact).max():.3g}"
        f" (adds up to {adds:.2g}; with 1 background row {np.abs(one - one_exact).max():.3g};"
        f" its raw-margin values: {np.abs(raw_theirs - raw_exact).max():.2g})"
    )
    print(
        f"   shapgov.shap.TreeExplainer: max |value - brute force| = "
        f"{np.abs(ours - exact).max():.3g}"
    )
    routing(shap, gshap)


def routing(shap, gshap) -> None:
    """3. The benchmark's interventional LightGBM (bench_shap_facade.py): the row of 2,000
    where shap and the facade differ most, against its worst background row, by brute
    force over all 2^20 coalitions through LightGBM's predict."""
    import lightgbm
    from sklearn.datasets import make_classification

    n = 10_000
    X, y = make_classification(n_samples=n + 100, n_features=20, n_informative=10, random_state=0)
    X, y, bg = X[:n], y[:n], X[n:]
    model = lightgbm.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1).fit(X, y)
    rows = X[:2000]
    a = gshap.TreeExplainer(model, bg).shap_values(rows)
    b = shap.TreeExplainer(model, bg).shap_values(rows)
    r = int(np.argmax(np.abs(a - b).max(axis=1)))
    x = rows[r : r + 1]
    per_bg = [
        np.abs(
            gshap.TreeExplainer(model, bg[j : j + 1]).shap_values(x)
            - shap.TreeExplainer(model, bg[j : j + 1]).shap_values(x)
        ).max()
        for j in range(len(bg))
    ]
    j = int(np.argmax(per_bg))
    m = X.shape[1]
    coalitions = np.arange(1 << m)
    mask = ((coalitions[:, None] >> np.arange(m)) & 1).astype(bool)
    hybrid = np.where(mask, x[0], bg[j])
    step = 200_000
    v = np.concatenate(
        [model.predict(hybrid[s : s + step], raw_score=True) for s in range(0, len(hybrid), step)]
    )
    size = mask.sum(1)
    fact = math.factorial
    w = np.array([fact(k) * fact(m - k - 1) / fact(m) for k in range(m)])
    phi = np.zeros(m)
    for f in range(m):
        without = coalitions[~mask[:, f]]
        phi[f] = np.sum(w[size[~mask[:, f]]] * (v[without | (1 << f)] - v[without]))
    ours = gshap.TreeExplainer(model, bg[j : j + 1]).shap_values(x)[0]
    theirs = shap.TreeExplainer(model, bg[j : j + 1]).shap_values(x)[0]
    print(
        f"3. LightGBM interventional (bench_shap_facade.py's model): row {r} of 2,000 differs "
        f"by {np.abs(a - b).max():.2g}; against background row {j}, brute force over 2^20 "
        f"coalitions: shap {np.abs(theirs - phi).max():.3g} off, shapgov.shap "
        f"{np.abs(ours - phi).max():.2g} off"
    )


if __name__ == "__main__":
    main()
