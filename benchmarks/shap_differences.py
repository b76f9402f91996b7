"""What shap and ``shapgov.shap`` give on the same two calls, against brute force: the
figures the README's "shap's API" section quotes.

1. A soft-voting classifier (LightGBM + logistic regression, 12 features): shap's
   ``TreeExplainer`` refuses it; ``shap.Explainer(model.predict_proba, masker)`` falls
   back to permutation sampling (more than 10 features). The facade's ``TreeExplainer``
   decomposes it and explains the averaged probability exactly.
2. A binary LightGBM classifier explained in probability space
   (``TreeExplainer(model, data, model_output="probability")``).

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
    print("2. LightGBM binary classifier, probability output, 20 rows, 50 bg")
    print(f"   shap.TreeExplainer: max |value - brute force| = {np.abs(theirs - exact).max():.3g}")
    print(
        f"   shapgov.shap.TreeExplainer: max |value - brute force| = "
        f"{np.abs(ours - exact).max():.3g}"
    )


if __name__ == "__main__":
    main()
