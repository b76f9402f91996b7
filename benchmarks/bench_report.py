"""Benchmark: the compliance report, and shapgov's plots against shap's in the same process.

Times writing an artifact set (with permutation impact, XEMP and the comparison) and
rendering its report, then renders the same summary (beeswarm) and waterfall figures
with shapgov.sinks.plots and with shap.plots (pyplot, Agg) to PNG and prints the ratios.
Run: python benchmarks/bench_report.py [--rows N]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import lightgbm
    from sklearn.datasets import load_breast_cancer

    import shapgov
    from shapgov.analyses.compare import compare_shap_xemp
    from shapgov.analyses.exemplars import xemp
    from shapgov.analyses.impact import mark_redundant, permutation_impact
    from shapgov.mlflow.artifacts import write_set
    from shapgov.sinks import plots
    from shapgov.sinks.compliance import write_report

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=188)
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = lightgbm.LGBMClassifier(n_estimators=100, num_leaves=15, verbose=-1).fit(X, y)
    rows, labels = X.iloc[: args.rows], y.iloc[: args.rows]
    e = shapgov.explain(model, rows)
    perm = mark_redundant(permutation_impact(model, rows, labels), rows)
    strengths = xemp(model, rows, training=X)
    comparison = compare_shap_xemp(e, strengths, k=3)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_set(Path(tmp), e, permutation=perm, xemp=strengths, comparison=comparison)
        t_set = time.perf_counter() - start
        t_report = best_of(lambda: write_report(Path(tmp)), 2)
        size = (Path(tmp) / "report.html").stat().st_size
    print(f"{len(e)} rows x {len(e.feature_names)} features, LightGBM 100 trees")
    print(
        f"artifact set: {t_set:.2f}s; report (11 embedded figures): {t_report:.2f}s, "
        f"{size / 1e6:.2f} MB"
    )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    values = shap.Explanation(
        values=e.values,
        base_values=e.base_values,
        data=e.data.to_numpy(),
        feature_names=e.feature_names,
    )

    def shap_png(draw) -> None:
        draw()
        buffer = io.BytesIO()
        plt.gcf().savefig(buffer, format="png", dpi=100)
        plt.close("all")

    pairs = {
        "summary": (
            lambda: plots.to_png(plots.summary(e)),
            lambda: shap_png(lambda: shap.plots.beeswarm(values, max_display=12, show=False)),
        ),
        "waterfall": (
            lambda: plots.to_png(plots.waterfall(e, 0)),
            lambda: shap_png(lambda: shap.plots.waterfall(values[0], max_display=10, show=False)),
        ),
    }
    for name, (ours, theirs) in pairs.items():
        a, b = best_of(ours), best_of(theirs)
        print(f"{name:9s} PNG: shapgov {a:.3f}s, shap {b:.3f}s, shap/shapgov {b / a:.2f}x")


if __name__ == "__main__":
    main()
