"""Benchmark: a million tree rows (issue 40), interventional and path-dependent, same process.

Workload: LightGBM 100 trees x 31 leaves on 30 features (``bench_background.py``'s model,
trained on 20,000 rows with 1% missing values), 1,000,000 fresh rows from the same
distribution, 100 background rows; 2 threads.

Columns:

* shapgov as routed (calls of 20,000 rows or more take the leaf tables and row blocks of
  ``shapgov/explainers/kernels/leaf_tables.py``) against the route every call took before
  (per-block patterns for the interventional game, the linear walk for the path-dependent
  one), on all the rows; agreement checked first (relative 1e-12) and additivity against
  LightGBM's raw score;
* peers on ``--peer-rows`` rows (default 100,000; shapgov is timed on the same rows for the
  ratio): LightGBM's ``pred_contrib`` (path-dependent, C++), shap's TreeExplainer (both
  games; interventional only up to ``--shap-max`` rows x background rows) and WOODELF
  (interventional; ``pip install woodelf-explainer``);
* LightGBM's own ``predict`` on all rows, for scale.

Run: python benchmarks/bench_million.py [--rows 1000000] [--peer-rows 100000]
"""

from __future__ import annotations

import argparse
import os
import sys

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from bench_background import agreement as relative  # noqa: E402
from bench_background import lightgbm_model, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer-rows", type=int, default=100_000)
    parser.add_argument("--shap-max", type=int, default=2_000_000)
    args = parser.parse_args()

    import numba

    from shapgov.explainers.kernels import background_treeshap, linear_treeshap
    from shapgov_plugins.tree import tree_ensemble

    model, X = lightgbm_model()
    rng = np.random.default_rng(40)
    rows = rng.normal(size=(args.rows, X.shape[1]))
    rows[rng.random(rows.shape) < 0.01] = np.nan
    bg = X[-100:]
    ens = tree_ensemble(model)
    print(f"numba threads {numba.get_num_threads()}; {ens.n_trees} trees, {args.rows:,} rows")
    warm = rows[:25_000]  # compiles (or loads) both routes of both games
    background_treeshap.background_shap(ens, warm, bg)
    linear_treeshap.linear_path_dependent_shap(ens, warm)
    raw = model.predict(rows, raw_score=True)

    def before(module, fn):
        keep = module.TABLE_MIN_ROWS
        module.TABLE_MIN_ROWS = 1 << 62
        try:
            return timed(fn)
        finally:
            module.TABLE_MIN_ROWS = keep

    t_i, (phi_i, base_i) = timed(lambda: background_treeshap.background_shap(ens, rows, bg))
    t_ib, (old_i, _) = before(
        background_treeshap, lambda: background_treeshap.background_shap(ens, rows, bg)
    )
    t_p, (phi_p, base_p) = timed(lambda: linear_treeshap.linear_path_dependent_shap(ens, rows))
    t_pb, (old_p, _) = before(
        linear_treeshap, lambda: linear_treeshap.linear_path_dependent_shap(ens, rows)
    )
    for name, new, old, base in (
        ("interventional", phi_i, old_i, base_i),
        ("path-dependent", phi_p, old_p, base_p),
    ):
        dis = relative(new, old)
        miss = float(np.abs(base[0] + new.sum(1)[:, 0] - raw).max())
        if dis > 1e-12 or miss > 1e-9:
            raise SystemExit(f"{name}: routes disagree by {dis:.1e}, additivity {miss:.1e}")
        print(f"  {name}: routes agree to {dis:.1e} (relative), additivity {miss:.1e}")
    t_pred, _ = timed(lambda: model.predict(rows, n_jobs=THREADS))
    print(f"\n{args.rows:,} rows x 30 columns, 100 background rows, {THREADS} threads")
    print(f"  interventional  shapgov {t_i:6.2f}s | before {t_ib:6.2f}s ({t_ib / t_i:.1f}x)")
    print(f"  path-dependent  shapgov {t_p:6.2f}s | before {t_pb:6.2f}s ({t_pb / t_p:.1f}x)")
    print(f"  LightGBM predict (raw output only) {t_pred:6.2f}s")

    n = min(args.peer_rows, args.rows)
    few = rows[:n]
    print(f"\npeers on {n:,} rows (shapgov timed again on the same rows)")
    t_i_few, (phi_if, _) = timed(lambda: background_treeshap.background_shap(ens, few, bg))
    t_p_few, (phi_pf, _) = timed(lambda: linear_treeshap.linear_path_dependent_shap(ens, few))
    t_c, contrib = timed(lambda: model.predict(few, pred_contrib=True, n_jobs=THREADS))
    dis = relative(phi_pf[:, :, 0], contrib[:, :-1])
    print(
        f"  path-dependent  shapgov {t_p_few:6.2f}s | LightGBM pred_contrib {t_c:6.2f}s "
        f"({t_c / t_p_few:.1f}x slower, agree {dis:.1e})"
    )
    try:
        import shap
    except ImportError:
        shap = None
    if shap is not None:
        t_s, theirs = timed(lambda: shap.TreeExplainer(model).shap_values(few))
        dis = relative(phi_pf[:, :, 0], theirs)
        print(
            f"  path-dependent  shap TreeExplainer {t_s:6.2f}s ({t_s / t_p_few:.1f}x, "
            f"agree {dis:.1e})"
        )
        if n * len(bg) <= args.shap_max:
            masker = shap.maskers.Independent(bg, max_samples=len(bg))
            explainer = shap.TreeExplainer(model, masker, feature_perturbation="interventional")
            t_s, theirs = timed(lambda: explainer.shap_values(few, check_additivity=False))
            dis = relative(phi_if[:, :, 0], theirs)
            print(
                f"  interventional  shap TreeExplainer {t_s:6.2f}s ({t_s / t_i_few:.1f}x, "
                f"agree {dis:.1e})"
            )
    try:
        import pandas as pd
        import woodelf
    except ImportError:
        print("  WOODELF not installed (pip install woodelf-explainer): no WOODELF column")
    else:
        cols = [f"f{j}" for j in range(X.shape[1])]
        explainer = woodelf.WoodelfExplainer(model, pd.DataFrame(bg, columns=cols))
        frame = pd.DataFrame(few, columns=cols)
        t_w, theirs = timed(lambda: explainer.shap_values(frame, verbose=False))
        dis = relative(phi_if[:, :, 0], np.asarray(theirs))
        print(
            f"  interventional  shapgov {t_i_few:6.2f}s | WOODELF {t_w:6.2f}s "
            f"({t_w / t_i_few:.1f}x slower, agree {dis:.1e})"
        )


if __name__ == "__main__":
    main()
