"""Benchmark: XEMP strengths by walking the trees, by batched predict calls, and by one
predict call per (row, feature), in the same process, against the bare explanation.

Workload (issue 16): LightGBM regression 100 trees x 31 leaves on 50 features, 10,000
rows, 20 exemplars per feature. The tree walk makes no predict calls beyond one of the
rows; the batched path predicts every (row, exemplar) grid of a feature, one call per
block of rows (the route for models that are not trees, and what XEMP did for every model
before); the per-(row, feature) loop is extrapolated from 50 rows. Agreement is checked.
Run: python benchmarks/bench_xemp.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))
from bench_governance import workload
from timing import best_of


def naive(model, X: pd.DataFrame, training: pd.DataFrame, n_exemplars: int) -> np.ndarray:
    """One predict call per (row, feature): the straightforward implementation."""
    from shapgov.analyses.exemplars import exemplars

    out = np.empty((len(X), X.shape[1]))
    ex = {c: exemplars(training[[c]], n_exemplars) for c in X.columns}
    for i in range(len(X)):
        row = X.iloc[[i]]
        own = model.predict(row)[0]
        for j, c in enumerate(X.columns):
            values, weights = ex[c]
            grid = pd.concat([row] * len(values), ignore_index=True)
            grid[c] = values[c].to_numpy()
            out[i, j] = own - weights @ model.predict(grid)
    return out


def main() -> None:
    import shapgov
    from shapgov.analyses.exemplars import xemp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    n_ex = 20
    model, X, _ = workload(args.rows)
    m = X.shape[1]
    shapgov.explain(model, X.iloc[:200])
    xemp(model, X.iloc[:200], training=X)  # load the compiled kernels once
    print(f"XEMP: LightGBM 100 x 31, {args.rows:,} rows x {m} features x {n_ex} exemplars")
    t_explain, _ = best_of(lambda: shapgov.explain(model, X), 3)
    t_trees, walked = best_of(lambda: xemp(model, X, training=X, n_exemplars=n_ex), 3)
    t_batched, batched = best_of(
        lambda: xemp(model, X, training=X, n_exemplars=n_ex, method="predict"), 1
    )
    few = min(50, args.rows)
    start = time.perf_counter()
    ref = naive(model, X.iloc[:few], X, n_ex)
    t_naive = (time.perf_counter() - start) * args.rows / few
    assert walked.params["method"] == "trees", walked.params
    diff = np.abs(walked.strengths - batched.strengths).max()
    diff_naive = np.abs(walked.strengths[:few, :, 0] - ref).max()
    print(f"  shapgov.explain (path-dependent) : {t_explain:6.2f}s")
    print(
        f"  XEMP, tree walk                  : {t_trees:6.2f}s  {t_trees / t_explain:.2f}x explain"
    )
    print(
        f"  XEMP, batched predict calls      : {t_batched:6.2f}s  "
        f"tree walk {t_batched / t_trees:.0f}x faster; max |diff| {diff:.1e}"
    )
    print(
        f"  one predict call per (row, feat) : {t_naive:6.1f}s  (extrapolated from {few} rows)"
        f"  tree walk {t_naive / t_trees:.0f}x faster; max |diff| {diff_naive:.1e}"
    )


if __name__ == "__main__":
    main()
