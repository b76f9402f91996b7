"""Benchmark: what explaining over time windows adds to the bare explanation.

Workload (issue 18): 1,000,000 rows over 24 monthly windows, LightGBM 100 trees x 31
leaves, 30 features, interventional TreeSHAP against 100 background rows. Prints the bare
``shapgov.explain`` time, ``shapgov.over_time`` on the same rows, what the aggregation adds
(rows to windows, per-window impact and additivity, the drift statistics), and the peak of
memory traced (numpy reports its buffers to tracemalloc) above the explanation's own, for
24 monthly and 104 weekly windows: a copy of the values per window would grow with the
windows, the aggregation's scratch does not.

Run: python benchmarks/bench_over_time.py [--rows N] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))
from timing import best_of

N_FEATURES = 30


def workload(rows: int, seed: int = 0):
    """Rows in time order over 24 months, a model trained on 50,000 rows, 100 background
    rows; one feature's spread doubles in the second year."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(rows, N_FEATURES)), columns=[f"f{j}" for j in range(N_FEATURES)]
    )
    when = pd.Timestamp("2023-01-01") + pd.to_timedelta(np.linspace(0, 730.99, rows), "D")
    X.loc[when >= pd.Timestamp("2024-01-01"), "f3"] *= 2.0
    y = X.f0 + X.f1 * X.f2 + np.sin(X.f3) + 0.5 * X.f4 * X.f5 + 0.1 * rng.normal(size=rows)
    train = slice(0, 50_000)
    model = lgb.LGBMRegressor(n_estimators=100, num_leaves=31, verbose=-1)
    model.fit(X.iloc[train], y.iloc[train])
    return model, X, when, X.iloc[:100]


def traced_peak(fn):
    """``(peak bytes traced during fn, result)``."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import shapgov

    model, X, when, bg = workload(args.rows)
    shapgov.over_time(model, X.iloc[:2000], time=when[:2000], freq="M", background=bg)  # compile
    t_explain, e = best_of(lambda: shapgov.explain(model, X, background=bg), args.repeats)
    t_over, r = best_of(
        lambda: shapgov.over_time(model, X, time=when, freq="M", background=bg), args.repeats
    )
    same = np.array_equal(r.explanation.values, e.values)
    print(
        f"{args.rows:,} rows x {N_FEATURES} features, {len(r.windows)} monthly windows, "
        f"LightGBM 100 x 31 leaves, interventional against {len(bg)} background rows"
    )
    print(f"  shapgov.explain            {t_explain:7.2f} s")
    print(f"  shapgov.over_time          {t_over:7.2f} s  (values identical to explain: {same})")
    print(
        f"  aggregation adds           {t_over - t_explain:7.2f} s = "
        f"{100 * (t_over - t_explain) / t_explain:.1f}% of the explain time"
    )
    print(
        f"  flagged windows: {r.flagged_windows[:3]}... ({len(r.flagged_windows)} of "
        f"{len(r.windows)}); max impact drift {r.max_impact_drift():.3f}"
    )

    # the aggregation alone, on the explanation above, timed and memory-traced
    from shapgov.analyses import over_time as ot
    from shapgov.analyses.windows import time_windows

    values = e._raw
    names = [str(c) for c in e.feature_names]
    for freq, label in (("M", "monthly"), ("W", "weekly")):

        def aggregate(freq=freq):
            win = time_windows(pd.Series(when), freq=freq, windows=None, reference=None)
            table = ot._window_table(win, e)
            impact = ot._impact_table(win, names, values, None)
            drift = ot._drift_tables(
                win, names, values, impact, alpha=0.05, min_effect=0.01, threshold=0.05
            )
            return win, table, impact, drift

        t_agg, (win, *_) = best_of(aggregate, args.repeats)
        peak, _ = traced_peak(aggregate)
        print(
            f"  aggregation alone, {len(win.labels):3d} {label} windows: {t_agg:6.2f} s, "
            f"peak traced {peak / 2**20:7.1f} MiB (values: {values.nbytes / 2**20:.0f} MiB)"
        )
    import numba

    scratch = numba.get_num_threads() * len(X) * 8
    print(
        f"  + the drift kernel's scratch (numba, not traced): one column of every row per "
        f"thread, {numba.get_num_threads()} x {len(X) * 8 / 2**20:.1f} MiB = "
        f"{scratch / 2**20:.1f} MiB, whatever the number of windows"
    )


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(whole benchmark {time.perf_counter() - start:.0f} s)")
