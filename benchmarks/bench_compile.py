"""Numba compile time of the tree kernels: the first explain() calls of a process.

Cold cache: NUMBA_CACHE_DIR=$(mktemp -d) python benchmarks/bench_compile.py
Warm cache: run the same command again with the same NUMBA_CACHE_DIR.
Prints the first path-dependent call, the first background + interactions call, and the
process's peak resident memory.
"""

from __future__ import annotations

import os
import resource
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    import lightgbm
    from sklearn.datasets import load_diabetes

    import shapgov

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y)
    start = time.perf_counter()
    shapgov.explain(model, X[:50])  # path-dependent
    path_dependent = time.perf_counter() - start
    start = time.perf_counter()
    shapgov.explain(model, X[:50], background=X[100:200], interactions=True)
    background = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"first path-dependent call {path_dependent:.1f}s; first background + interactions "
        f"call {background:.1f}s; peak RSS {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
