"""Benchmark: shapgov's TreeSHAP against LightGBM's pred_contrib (C++) and shap, same process.

Workloads of issue 3 (2 threads; models trained on 100,000 x 50 synthetic rows):

* regression: 100 trees x 31 leaves, 10,000 rows explained;
* binary: 200 trees x 63 leaves, 10,000 rows explained;
* deep: regression, 500 trees x 255 leaves, no depth limit, 1,000 rows explained.

Agreement with pred_contrib is checked before any time is printed.
Run: python benchmarks/bench_tree.py [--workload regression|binary|deep] [--rows N]
     [--interventional]  (adds interventional TreeSHAP against shap's, 100 background rows)
Cold numba cache: NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/bench_tree.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
THREADS = 2
WORKLOADS = {
    "regression": dict(objective="regression", n_estimators=100, num_leaves=31, rows=10_000),
    "binary": dict(objective="binary", n_estimators=200, num_leaves=63, rows=10_000),
    "deep": dict(
        objective="regression",
        n_estimators=500,
        num_leaves=255,
        rows=1_000,
        min_child_samples=2,
        max_depth=-1,
    ),
}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="regression")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--shap-rows", type=int, default=1000)
    parser.add_argument("--interventional", action="store_true")
    args = parser.parse_args()

    import lightgbm
    import numba
    import shap

    from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
    from shapgov.explainers.kernels.treeshap import path_dependent_shap
    from shapgov_plugins.tree import tree_ensemble

    spec = dict(WORKLOADS[args.workload])
    n_rows = args.rows or spec.pop("rows")
    spec.pop("rows", None)
    numba.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 50))
    signal = X[:, :10] @ rng.normal(size=10) + np.sin(X[:, 10] * 3) + X[:, 11] * X[:, 12]
    y = signal + rng.normal(size=len(X))
    if spec["objective"] == "binary":
        y = (y > 0).astype(int)
    t_train, model = timed(
        lambda: lightgbm.LGBMRegressor(n_jobs=THREADS, verbose=-1, **spec).fit(X, y)
    )
    rows = X[:n_rows]

    t_parse, ens = timed(lambda: tree_ensemble(model))
    t_first, _ = timed(lambda: linear_path_dependent_shap(ens, rows[:10]))
    t_ours, (phi, _) = timed(lambda: linear_path_dependent_shap(ens, rows))
    t_lgbm, contrib = timed(lambda: model.predict(rows, pred_contrib=True, n_jobs=THREADS))
    scale = np.abs(contrib[:, :-1]).max()
    diff = np.abs(phi[:, :, 0] - contrib[:, :-1]).max() / scale
    if diff > 1e-9:
        raise SystemExit(f"disagreement with pred_contrib: {diff:.2e}")
    sub = rows[: min(args.shap_rows, n_rows)]
    path_dependent_shap(ens, sub[:2])  # compile or cache load, outside the timing
    t_classic, _ = timed(lambda: path_dependent_shap(ens, sub))
    t_shap, _ = timed(lambda: shap.TreeExplainer(model).shap_values(sub))
    per = n_rows / len(sub)
    print(
        f"workload {args.workload}: {spec['n_estimators']} trees x {spec['num_leaves']} leaves, "
        f"max depth {ens.max_depth}, {n_rows} rows, {THREADS} threads (trained in {t_train:.0f}s)"
    )
    print(f"parse {t_parse:.2f}s; first call (compile or cache load, 10 rows) {t_first:.2f}s")
    print(f"shapgov linear-time TreeSHAP : {t_ours:8.3f}s  {n_rows / t_ours:10,.0f} rows/s")
    print(
        f"LightGBM pred_contrib (C++)  : {t_lgbm:8.3f}s  {n_rows / t_lgbm:10,.0f} rows/s"
        f"  -> shapgov is {t_lgbm / t_ours:.2f}x faster"
    )
    print(f"shapgov Algorithm 2          : {t_classic * per:8.3f}s  (from {len(sub)} rows)")
    print(
        f"shap TreeExplainer           : {t_shap * per:8.3f}s  (from {len(sub)} rows)"
        f"  -> shapgov is {t_shap * per / t_ours:.2f}x faster"
    )
    print(f"max |diff| / max |value| vs pred_contrib: {diff:.1e}")
    if args.interventional:
        interventional(model, ens, X, shap)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of the whole process (data, model, peers): {peak:,.0f} MiB")


def interventional(model, ens, X, shap) -> None:
    """Interventional TreeSHAP, 100 background rows, 1,000 rows, against shap's."""
    from shapgov.explainers.kernels.interventional_treeshap import interventional_shap

    rows, bg = X[:1000], X[-100:]
    interventional_shap(ens, rows[:2], bg[:2])  # compile or cache load
    t_ours, (phi, _) = timed(lambda: interventional_shap(ens, rows, bg))
    peer = shap.TreeExplainer(model, data=bg, feature_perturbation="interventional")
    t_shap, sv = timed(lambda: peer.shap_values(rows))
    diff = np.abs(phi[:, :, 0] - sv).max()
    print(
        f"interventional, 100 background rows, 1,000 rows: shapgov {t_ours:.3f}s, "
        f"shap {t_shap:.3f}s -> {t_shap / t_ours:.2f}x; max |diff| {diff:.1e} (shap is float32)"
    )


if __name__ == "__main__":
    main()
