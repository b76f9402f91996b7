"""Benchmark: shapgov's path-dependent TreeSHAP against LightGBM's pred_contrib (C++) and shap.

Issue 3's first workload: LightGBM regression, 100 trees x 31 leaves, trained on
100,000 x 50 synthetic rows, explaining 10,000 rows with 2 threads. Agreement is checked
before any time is printed. Run: python benchmarks/bench_tree.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
THREADS = 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()

    import lightgbm
    import numba
    import shap

    from shapgov.kernels.linear_treeshap import linear_path_dependent_shap
    from shapgov.kernels.treeshap import path_dependent_shap
    from shapgov_plugins.tree import tree_ensemble

    numba.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 50))
    y = X[:, :10] @ rng.normal(size=10) + np.sin(X[:, 10] * 3) + rng.normal(size=len(X))
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=31, n_jobs=THREADS, verbose=-1).fit(
        X, y
    )
    rows = X[: args.rows]

    t = time.perf_counter()
    ens = tree_ensemble(model)
    linear_path_dependent_shap(ens, rows[:10])  # compile or load from the numba cache
    t_first = time.perf_counter() - t
    path_dependent_shap(ens, rows[:10])

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    t_ours, (phi, _) = timed(lambda: linear_path_dependent_shap(ens, rows))
    t_classic, (phi_c, _) = timed(lambda: path_dependent_shap(ens, rows))
    t_lgbm, contrib = timed(lambda: model.predict(rows, pred_contrib=True, n_jobs=THREADS))
    scale = np.abs(contrib[:, :-1]).max()
    diff = max(np.abs(p[:, :, 0] - contrib[:, :-1]).max() for p in (phi, phi_c)) / scale
    if diff > 1e-9:
        raise SystemExit(f"disagreement with pred_contrib: {diff:.2e}")
    sub = rows[:1000]
    t_shap, _ = timed(lambda: shap.TreeExplainer(model).shap_values(sub))
    print(
        f"workload: LightGBM regression 100 trees x 31 leaves, {args.rows} rows, {THREADS} threads"
    )
    print(f"first call (parse + compile/cache load, 10 rows): {t_first:.2f}s")
    print(f"shapgov linear-time    : {t_ours:.3f}s  ({args.rows / t_ours:,.0f} rows/s)")
    print(f"shapgov Algorithm 2    : {t_classic:.3f}s  ({args.rows / t_classic:,.0f} rows/s)")
    print(
        f"LightGBM pred_contrib  : {t_lgbm:.3f}s  ratio pred_contrib/shapgov {t_lgbm / t_ours:.2f}x"
    )
    print(
        f"shap TreeExplainer     : {t_shap * args.rows / 1000:.3f}s (extrapolated from 1,000 rows)"
    )
    print(f"max relative difference to pred_contrib: {diff:.1e}")


if __name__ == "__main__":
    main()
