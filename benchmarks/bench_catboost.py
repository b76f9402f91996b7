"""Benchmark: CatBoost models explained by shapgov against CatBoost's own ShapValues (and
shap's TreeExplainer, which calls CatBoost for the path-dependent game), same process.

Workload of issue 34: a CatBoostRegressor of 500 symmetric trees of depth 6 on 8 float
columns and 2 categorical ones (one-hot and single-column CTR splits, the models where
CatBoost's own values are right), 10,000 rows explained:

* path-dependent: ``shapgov.explain(model, X)`` against ``get_feature_importance(
  type="ShapValues", shap_calc_type="Regular")``;
* interventional against 100 reference rows: ``shapgov.explain(model, X,
  background=ref)`` against CatBoost's ``reference_data=`` mode ("Independent").

Agreement (max |diff| / max |value|) is checked before any ratio is printed; times are
the best of ``--repeats`` calls of the whole user-facing call (shapgov: decomposition,
the JSON export read, the encoding and the governance checks included), 2 threads each.
Run: python benchmarks/bench_catboost.py [--rows 10000] [--trees 500] [--independent-rows N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from timing import best_of  # noqa: E402

CAT = ["purpose", "region"]


def table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{j}": rng.normal(size=n) for j in range(8)})
    X.loc[rng.uniform(size=n) < 0.05, "x3"] = np.nan
    X["purpose"] = rng.choice(["car", "home", "education"], n)  # one-hot (<= 3 labels)
    X["region"] = rng.choice([f"r{i}" for i in range(40)], n)  # CTR
    region_effect = {f"r{i}": rng.normal() for i in range(40)}
    y = (
        X.x0
        + X.x1 * X.x2
        + np.nan_to_num(X.x3)
        + (X.purpose == "home") * 0.8
        + X.region.map(region_effect)
        + rng.normal(scale=0.3, size=n)
    )
    return X, y.to_numpy()


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--references", type=int, default=100)
    parser.add_argument(
        "--independent-rows",
        type=int,
        default=None,
        help="rows for the interventional comparison (default: --rows)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import catboost

    import shapgov

    X_train, y = table(20_000, 0)
    model = catboost.CatBoostRegressor(
        iterations=args.trees,
        depth=args.depth,
        one_hot_max_size=3,
        max_ctr_complexity=1,
        cat_features=CAT,
        verbose=0,
        random_seed=0,
        thread_count=THREADS,
        allow_writing_files=False,
    ).fit(X_train, y)
    X, _ = table(args.rows, 1)
    ref, ref_label = X_train.iloc[: args.references], y[: args.references]
    pool = catboost.Pool(X, cat_features=CAT)
    print(
        f"catboost {catboost.__version__}: {args.trees} symmetric trees of depth {args.depth}, "
        f"{args.rows} rows, {THREADS} threads"
    )

    # path-dependent
    def native_regular():
        return model.get_feature_importance(
            pool, type="ShapValues", shap_calc_type="Regular", thread_count=THREADS
        )

    def ours_path():
        return shapgov.explain(model, X)

    t_native, native = best_of(native_regular, args.repeats)
    t_ours, e = best_of(ours_path, args.repeats)
    agree = agreement(e.values, native[:, :-1])
    print(f"path-dependent agreement with CatBoost Regular: {agree:.2e} (max |diff| / max |value|)")
    if agree > 1e-9:
        raise SystemExit("path-dependent values disagree: no ratio printed")
    print(
        f"path-dependent: shapgov {t_ours:.3f} s, CatBoost Regular {t_native:.3f} s, "
        f"speed-up {t_native / t_ours:.2f}x"
    )
    # where shapgov's path-dependent time goes: the JSON read into flat trees, the kernel
    from shapgov.explainers.kernels.subset_treeshap import subset_path_dependent
    from shapgov_plugins.catboost_trees import CatBoostEncoding
    from shapgov_plugins.tree import tree_ensemble

    t_parse, ens = best_of(lambda: tree_ensemble(model), args.repeats)
    Z = CatBoostEncoding.of(model)(X)
    t_kernel, _ = best_of(lambda: subset_path_dependent(ens, Z), args.repeats)
    print(f"  of which: JSON read into flat trees {t_parse:.3f} s, kernel {t_kernel:.3f} s")
    try:
        import shap

        explainer = shap.TreeExplainer(model)
        t_shap, _ = best_of(lambda: explainer.shap_values(pool), args.repeats)
        print(
            f"path-dependent: shap {shap.__version__} TreeExplainer {t_shap:.3f} s "
            f"(calls CatBoost), speed-up {t_shap / t_ours:.2f}x"
        )
    except ImportError:
        print("shap not installed: its TreeExplainer is not timed")

    # interventional
    rows = X.iloc[: args.independent_rows or args.rows]
    # CatBoost's reference_data mode asks both pools for labels; they do not enter the values
    rows_pool = catboost.Pool(rows, label=np.zeros(len(rows)), cat_features=CAT)
    ref_pool = catboost.Pool(ref, label=ref_label, cat_features=CAT)  # CatBoost needs labels

    def native_independent():
        return model.get_feature_importance(
            rows_pool, type="ShapValues", reference_data=ref_pool, thread_count=THREADS
        )

    def ours_interventional():
        return shapgov.explain(model, rows, background=ref)

    t_native, native = best_of(native_independent, args.repeats)
    t_ours, e = best_of(ours_interventional, args.repeats)
    agree = agreement(e.values, native[:, :-1])
    print(
        f"interventional agreement with CatBoost Independent ({len(rows)} rows, "
        f"{len(ref)} references): {agree:.2e}"
    )
    if agree > 1e-9:
        raise SystemExit("interventional values disagree: no ratio printed")
    print(
        f"interventional: shapgov {t_ours:.3f} s, CatBoost Independent {t_native:.3f} s, "
        f"speed-up {t_native / t_ours:.2f}x"
    )


if __name__ == "__main__":
    main()
