"""Benchmark: XEMP strengths, batched, against a per-(row, feature) loop in the same process.

Cost grows as rows x features x exemplars model evaluations; shapgov builds every
(row, exemplar) grid of a feature as one table and predicts it in batches.
Run: python benchmarks/bench_xemp.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


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
    import lightgbm

    from shapgov.analyses.exemplars import xemp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    m, n_ex = 20, 20
    X = pd.DataFrame(rng.normal(size=(20_000, m)), columns=[f"x{j}" for j in range(m)])
    y = X["x0"] * X["x1"] + np.sin(X["x2"]) + X.iloc[:, 3:].sum(axis=1) * 0.1
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1).fit(X, y)
    rows = X.iloc[: args.rows]
    evals = args.rows * m * n_ex
    print(f"XEMP: LightGBM 100 x 31, {args.rows} rows x {m} features x {n_ex} exemplars")
    t0 = time.perf_counter()
    result = xemp(model, rows, training=X, n_exemplars=n_ex)
    t_batched = time.perf_counter() - t0
    few = min(50, args.rows)
    t0 = time.perf_counter()
    ref = naive(model, rows.iloc[:few], X, n_ex)
    t_naive = (time.perf_counter() - t0) * args.rows / few
    diff = np.abs(result.strengths[:few, :, 0] - ref).max()
    print(
        f"  shapgov batched   : {t_batched:6.2f}s  {args.rows / t_batched:8,.0f} rows/s  "
        f"{evals / t_batched:12,.0f} evaluations/s"
    )
    print(
        f"  per-(row, feature): {t_naive:6.2f}s  (extrapolated from {few} rows) "
        f"-> batched is {t_naive / t_batched:.1f}x faster; max |diff| {diff:.1e}"
    )


if __name__ == "__main__":
    main()
