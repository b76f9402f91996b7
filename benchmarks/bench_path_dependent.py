"""Benchmark: path-dependent TreeSHAP against the libraries' native kernels, same process.

Workloads of issue 13 (2 threads each):

* XGBoost 200 trees of depth 8 on 50 features, 5,000 rows: ``pred_contribs`` (XGBoost
  >= 3.3 ships Quadrature-TreeSHAP natively; it needs Python >= 3.12, so run this in a 3.12
  venv: ``python3.12 -m venv v && v/bin/pip install -e . xgboost-cpu==3.4.1``);
* LightGBM 100 trees x 31 leaves on 50 features trained on 20,000 rows, 10,000 rows:
  ``pred_contrib``.

Peers on both: shapiq 1.8's path-dependent TreeExplainer (its QuadratureTreeSHAP,
Python >= 3.12, ``pip install -e ".[bench]"``), where it installs.

Agreement (max |diff| / max |value|) is checked before any ratio is printed.
Run: python benchmarks/bench_path_dependent.py [--skip-xgboost] [--skip-lightgbm]
"""

from __future__ import annotations

import argparse
import os
import time

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402


def best_of(fn, repeats: int = 3):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def data(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + X[:, 3:20].sum(1) + rng.normal(size=n)
    return X, y


def shapiq_values(model, rows: np.ndarray) -> np.ndarray | None:
    """shapiq's path-dependent Shapley values ``(n, M)``, or ``None`` if not installed."""
    try:
        import shapiq  # 1.8 needs Python >= 3.12
    except ImportError:
        return None
    explainer = shapiq.TreeExplainer(model, mode="pathdependent", max_order=1, index="SV")
    batch = explainer.explain_X(rows)
    zero = np.zeros(len(rows))  # a feature no tree splits on has no entry
    return np.column_stack([batch.values.get((j,), zero) for j in range(rows.shape[1])])


def compare(name: str, model, rows: np.ndarray, native) -> None:
    from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
    from shapgov_plugins.tree import tree_ensemble

    ens = tree_ensemble(model)
    linear_path_dependent_shap(ens, rows[:2])  # compile or load the cache
    t_ours, (phi, _) = best_of(lambda: linear_path_dependent_shap(ens, rows))
    t_native, theirs = best_of(lambda: native(rows))
    theirs = np.asarray(theirs, dtype=float)[:, : rows.shape[1]]
    dis = np.abs(phi[:, :, 0] - theirs).max() / np.abs(theirs).max()
    if dis > 1e-5:  # XGBoost's native kernel is float32
        raise SystemExit(f"{name}: disagreement {dis:.2e}")
    line = (
        f"{name}: shapgov {t_ours:.2f}s, native {t_native:.2f}s -> {t_native / t_ours:.2f}x "
        f"(agree {dis:.1e}, max depth {ens.max_depth})"
    )
    shapiq_values(model, rows[:2])  # its first call sets up
    t_q, q = best_of(lambda: shapiq_values(model, rows), repeats=1)
    if q is not None:
        dis_q = np.abs(phi[:, :, 0] - q).max() / np.abs(q).max()
        if dis_q > 1e-5:
            raise SystemExit(f"{name}: shapiq disagrees by {dis_q:.2e}")
        line += f"; shapiq {t_q:.2f}s -> {t_q / t_ours:.2f}x (agree {dis_q:.1e})"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-xgboost", action="store_true")
    parser.add_argument("--skip-lightgbm", action="store_true")
    args = parser.parse_args()
    if not args.skip_xgboost:
        import xgboost

        X, y = data(20_000, 50, 1)
        model = xgboost.XGBRegressor(n_estimators=200, max_depth=8, n_jobs=THREADS).fit(X, y)
        booster = model.get_booster()
        rows = X[:5_000]
        compare(
            f"XGBoost {xgboost.__version__} 200 x depth 8, 50 features, 5,000 rows",
            model,
            rows,
            lambda r: booster.predict(xgboost.DMatrix(r), pred_contribs=True),
        )
    if not args.skip_lightgbm:
        import lightgbm

        X, y = data(20_000, 50, 2)
        model = lightgbm.LGBMRegressor(
            n_estimators=100, num_leaves=31, verbose=-1, n_jobs=THREADS
        ).fit(X, y)
        compare(
            "LightGBM 100 x 31 leaves, 50 features, 10,000 rows",
            model,
            X[:10_000],
            lambda r: model.predict(r, pred_contrib=True),
        )


if __name__ == "__main__":
    main()
