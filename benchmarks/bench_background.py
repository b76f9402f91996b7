"""Benchmark: background (interventional) TreeSHAP against WOODELF and shap, same process.

Workloads of issue 13 (2 threads each):

* LightGBM 100 trees x 31 leaves on 30 features (trained on 20,000 synthetic rows), rows x
  background rows of 1,000 x 100, 2,000 x 1,000 and 10,000 x 10,000;
* XGBoost 200 trees of depth 8 on 50 features, 5,000 x 1,000 (``--xgboost``).

Peers: WOODELF (``pip install woodelf-explainer``), shapiq's interventional TreeExplainer
(shapiq 1.8 needs Python >= 3.12: run the script in a 3.12 venv with
``pip install -e ".[bench]"``), shap's interventional TreeExplainer
(only up to ``--shap-max`` rows x background rows, it is quadratic), and shapgov's own
rows x background kernel (``interventional_shap``, up to ``--old-max``). Agreement
(max |diff| / max |value|) is checked before any ratio is printed; a peer that disagrees
beyond 1e-6 stops the run.

Run: python benchmarks/bench_background.py [--xgboost] [--only 2000x1000]
Cold numba cache: NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/bench_background.py
"""

from __future__ import annotations

import argparse
import os
import resource
import time

THREADS = 2
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402

SIZES = [(1_000, 100), (2_000, 1_000), (10_000, 10_000)]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    theirs = np.asarray(theirs, dtype=float).reshape(ours.shape)
    return float(np.abs(ours - theirs).max() / max(np.abs(ours).max(), 1e-300))


def model_margin(model, X: np.ndarray) -> np.ndarray:
    """The model's own raw output (XGBoost's output_margin, LightGBM's raw_score)."""
    if type(model).__module__.startswith("xgboost"):
        return np.asarray(model.predict(X, output_margin=True), dtype=float)
    return np.asarray(model.predict(X, raw_score=True), dtype=float)


def judged(name, seconds, theirs, their_base, phi, base, model, rows) -> str:
    """A peer's column: its time and agreement; where it disagrees beyond 1e-6, the model's
    own raw output on the worst rows says who is right (a wrong shapgov stops the run)."""
    dis = agreement(phi[:, :, 0], theirs)
    if dis <= 1e-6:
        return f" | {name} {seconds:6.2f}s, agree {dis:.1e}"
    worst = np.argsort(np.abs(phi[:, :, 0] - theirs).max(axis=1))[-20:]
    own = model_margin(model, rows[worst])
    ours_miss = np.abs(base[0] + phi[worst, :, 0].sum(1) - own).max()
    their_miss = np.abs(their_base + theirs[worst].sum(1) - own).max()
    if ours_miss > 1e-4 * max(1.0, np.abs(own).max()):
        raise SystemExit(f"shapgov misses the model's output by {ours_miss:.2e}")
    return (
        f" | {name} {seconds:6.2f}s, DISAGREES by {dis:.1e} (on those rows its base + sum"
        f" misses the model's own output by {their_miss:.1e}, shapgov's by {ours_miss:.1e})"
    )


def lightgbm_model(seed: int = 0):
    import lightgbm

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20_000, 30))
    X[rng.random(X.shape) < 0.01] = np.nan
    y = np.nan_to_num(X[:, 0] * X[:, 1]) + np.sin(np.nan_to_num(X[:, 2]))
    y = y + np.nan_to_num(X[:, 3:12]).sum(1) + rng.normal(size=len(X))
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1, n_jobs=THREADS)
    return model.fit(X, y), X


def xgboost_model(seed: int = 1):
    import xgboost

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20_000, 50))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + X[:, 3:20].sum(1) + rng.normal(size=len(X))
    model = xgboost.XGBRegressor(n_estimators=200, max_depth=8, n_jobs=THREADS)
    return model.fit(X, y), X


def run(name, model, X, sizes, args) -> None:
    from shapgov.explainers.kernels.background_treeshap import background_shap
    from shapgov.explainers.kernels.interventional_treeshap import interventional_shap
    from shapgov_plugins.tree import tree_ensemble

    ens = tree_ensemble(model)
    first, _ = timed(lambda: background_shap(ens, X[:2], X[2:4]))
    print(f"\n{name}: {ens.n_trees} trees, max depth {ens.max_depth}; first call {first:.2f}s")
    try:
        import woodelf
    except ImportError:
        woodelf = None
        print("  WOODELF not installed (pip install woodelf-explainer): no WOODELF column")
    try:
        import shapiq  # 1.8 needs Python >= 3.12
    except ImportError:
        shapiq = None
        print("  shapiq not installed (Python >= 3.12: pip install shapiq): no shapiq column")
    try:
        import shap
    except ImportError:
        shap = None
    for n, b in sizes:
        rows, bg = X[:n], X[len(X) - b :]
        t_ours, (phi, base) = timed(lambda rows=rows, bg=bg: background_shap(ens, rows, bg))
        line = f"  {n:>6} x {b:<6} shapgov {t_ours:7.2f}s"
        if woodelf is not None:
            import pandas as pd

            cols = [f"f{j}" for j in range(X.shape[1])]
            frame, bgf = pd.DataFrame(rows, columns=cols), pd.DataFrame(bg, columns=cols)
            explainer = woodelf.WoodelfExplainer(model, bgf)
            t_w, theirs = timed(lambda e=explainer, f=frame: e.shap_values(f, verbose=False))
            w_base = np.ravel(explainer.expected_value)[0]
            line += judged("WOODELF", t_w, np.asarray(theirs), w_base, phi, base, model, rows)
            line += f" ({t_w / t_ours:.1f}x slower)"
        if shapiq is not None:

            def run_shapiq(rows=rows, bg=bg):
                explainer = shapiq.TreeExplainer(
                    model, mode="interventional", reference_dataset=bg, max_order=1, index="SV"
                )
                batch = explainer.explain_X(rows)
                values = [batch.values[(j,)] for j in range(rows.shape[1])]
                return np.column_stack(values), float(np.ravel(batch.baseline_value)[0])

            t_q, (theirs, q_base) = timed(run_shapiq)
            line += judged("shapiq", t_q, theirs, q_base, phi, base, model, rows)
            line += f" ({t_q / t_ours:.1f}x slower)"
        if n * b <= args.shap_max and shap is not None:
            # shap's default masker keeps 100 background rows: ask for all of them
            masker = shap.maskers.Independent(bg, max_samples=len(bg))
            explainer = shap.TreeExplainer(model, masker, feature_perturbation="interventional")
            t_s, theirs = timed(
                lambda e=explainer, r=rows: e.shap_values(r, check_additivity=False)
            )
            dis = agreement(phi[:, :, 0], theirs)
            if dis > 1e-5:  # shap keeps its data in float32
                raise SystemExit(f"shap disagrees: {dis:.2e}")
            line += f" | shap {t_s:7.2f}s ({t_s / t_ours:6.1f}x, agree {dis:.1e})"
        if n * b <= args.old_max:
            t_o, (old, _) = timed(lambda r=rows, z=bg: interventional_shap(ens, r, z))
            dis = agreement(phi, old)
            if dis > 1e-9:
                raise SystemExit(f"the rows x background kernel disagrees: {dis:.2e}")
            line += f" | rows x bg kernel {t_o:6.2f}s ({t_o / t_ours:5.1f}x)"
        print(line, flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of the process so far: {peak:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--xgboost", action="store_true", help="add the XGBoost workload")
    parser.add_argument("--only", default=None, help="one size, e.g. 2000x1000")
    parser.add_argument("--shap-max", type=int, default=2_000_000)
    parser.add_argument("--old-max", type=int, default=2_000_000)
    args = parser.parse_args()
    sizes = SIZES
    if args.only:
        n, b = (int(v) for v in args.only.lower().split("x"))
        sizes = [(n, b)]
    import numba

    print(f"numba threads: {numba.get_num_threads()}")
    model, X = lightgbm_model()
    run("LightGBM 100 x 31 leaves, 30 features", model, X, sizes, args)
    if args.xgboost:
        model, X = xgboost_model()
        run("XGBoost 200 trees depth 8, 50 features", model, X, [(5_000, 1_000)], args)


if __name__ == "__main__":
    main()
