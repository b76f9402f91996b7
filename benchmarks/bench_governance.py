"""Benchmark: what governance costs next to the bare explanation.

Workload (issue 16): LightGBM regression, 100 trees x 31 leaves, 50 features, path-dependent
TreeSHAP; the rows explained are also XEMP's training rows. Prints each step's time and its
ratio to the bare ``shapgov.explain``, then ``explain_and_log`` split into the model's own
predict calls, figure drawing, and everything else (shapgov's own bookkeeping), and peak RSS.
"Tree walks" are XEMP's and permutation impact's evaluations of the trees at replaced
columns (they take the place of predict calls); "the rest" is governance's own work:
the analyses' bookkeeping, the artifact set, the report's data, the MLflow upload.
Every run logs to a fresh local sqlite MLflow store in a temporary directory.

Run: python benchmarks/bench_governance.py [--rows N] [--scaling]
``--scaling`` runs 10,000 and 100,000 rows in separate processes (so peak RSS is each
one's own) and prints how ``explain_and_log`` grows.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))
from timing import best_of

N_FEATURES = 50
SPENT: dict[str, float] = {"explain": 0.0, "predict": 0.0, "walks": 0.0, "figures": 0.0}


def workload(rows: int, seed: int = 0):
    import lightgbm

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, N_FEATURES)), columns=[f"x{j}" for j in range(50)])
    y = (
        X["x0"] * X["x1"]
        + np.sin(3 * X["x2"])
        + (X.iloc[:, 3:10] ** 2).sum(axis=1) * 0.2
        + X.iloc[:, 10:].sum(axis=1) * 0.05
        + rng.normal(scale=0.1, size=rows)
    )
    model = lightgbm.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1, random_state=0)
    return model.fit(X, y), X, y.to_numpy()


_DEPTH = [0]  # instrumented calls in progress: only the outermost one counts


def _timed(owner: object, name: str, bucket: str) -> None:
    """Wrap ``owner.name`` so its wall time adds to ``SPENT[bucket]``, unless it runs
    inside another instrumented call (predict calls inside explain count as explain)."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        _DEPTH[0] += 1
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                SPENT[bucket] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def instrument() -> None:
    import lightgbm

    import shapgov.engine
    from shapgov.analyses import tree_walks
    from shapgov.sinks import plots

    _timed(shapgov.engine, "explain", "explain")
    _timed(lightgbm.LGBMRegressor, "predict", "predict")
    _timed(tree_walks, "exemplar_deltas", "walks")
    _timed(tree_walks, "donor_deltas", "walks")
    for name in ("impact_bar", "summary", "dependence", "waterfall", "mismatch_histogram"):
        _timed(plots, name, "figures")
    _timed(plots, "to_png", "figures")


def run(rows: int) -> dict[str, float]:
    import mlflow

    import shapgov
    import shapgov.mlflow
    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.analyses.impact import mark_redundant, permutation_impact, shap_impact
    from shapgov.analyses.prediction_explanations import prediction_explanations
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks.compliance import write_report

    model, X, y = workload(rows)
    # load the compiled kernels once (numba's cache; the first call in a process pays it)
    shapgov.explain(model, X.iloc[:200])
    xemp(model, X.iloc[:200], training=X, impact=shap_impact(shapgov.explain(model, X.iloc[:200])))
    permutation_impact(model, X.iloc[:200], y[:200])
    t = {}
    t["explain"], e = best_of(lambda: shapgov.explain(model, X), 3)
    t["shap impact"], impact = best_of(lambda: shap_impact(e), 1)
    t["prediction explanations"], _ = best_of(lambda: prediction_explanations(e, k=3), 1)
    t["permutation impact"], perm = best_of(
        lambda: mark_redundant(permutation_impact(model, X, y), X), 1
    )
    t["xemp"], strengths = best_of(lambda: xemp(model, X, training=X, impact=impact), 1)
    t["comparison"], comparison = best_of(
        lambda: compare_shap_xemp(e, strengths, k=3, impacts=[impact, perm]), 1
    )
    with tempfile.TemporaryDirectory() as tmp:
        t["artifact set"], _ = best_of(
            lambda: write_set(
                Path(tmp) / "set", e, permutation=perm, xemp=strengths, comparison=comparison
            ),
            1,
        )
        t["report"], _ = best_of(lambda: write_report(Path(tmp) / "set"), 1)
        mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
        mlflow.set_experiment("bench")
        with mlflow.start_run():
            t["log_explanation"], _ = best_of(lambda: shapgov.mlflow.log_explanation(e), 1)
        instrument()
        with mlflow.start_run():
            t["explain_and_log"], _ = best_of(
                lambda: shapgov.mlflow.explain_and_log(model, X, y=y), 1
            )
    t["  of which explain"] = SPENT["explain"]
    t["  of which predict calls"] = SPENT["predict"]
    t["  of which tree walks"] = SPENT["walks"]
    t["  of which figures"] = SPENT["figures"]
    t["  of which the rest"] = t["explain_and_log"] - sum(SPENT.values())
    return t


def show(rows: int, t: dict[str, float]) -> None:
    print(f"LightGBM 100 trees x 31 leaves, {rows:,} rows x {N_FEATURES} features (path-dependent)")
    for name, sec in t.items():
        print(f"  {name:26s} {sec:8.2f} s  {sec / t['explain']:7.1f}x explain")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:,.0f} MiB")


def scaling() -> None:
    out = {}
    for rows in (10_000, 100_000):
        proc = subprocess.run(
            [sys.executable, __file__, "--rows", str(rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        print(proc.stdout, end="")
        for line in proc.stdout.splitlines():
            if "explain_and_log" in line or line.strip().startswith("report "):
                out[(rows, line.split()[0])] = float(line.split()[1])
    grow = out[(100_000, "explain_and_log")] / out[(10_000, "explain_and_log")]
    report = out[(100_000, "report")] / out[(10_000, "report")]
    print(f"10x the rows: explain_and_log x{grow:.2f}, report x{report:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--scaling", action="store_true")
    args = parser.parse_args()
    if args.scaling:
        scaling()
        return
    show(args.rows, run(args.rows))


if __name__ == "__main__":
    main()
