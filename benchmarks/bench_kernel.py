"""Benchmark: shapgov's Kernel and Deep explainers against shap's KernelExplainer, same process.

Workloads of issue 4:

1. The original request's example (diabetes, StandardScaler + MLPRegressor(5, logistic)),
   X_test (146 rows) against the whole X_train (296 rows) as background. shap at
   nsamples='auto' enumerates all 2**10 coalitions, so both compute exact values:
   shapgov's Kernel (whole pipeline as a black box), once with the deduplication of
   hybrids that a background row cannot change (fewer model calls) and once without
   (exactly the same model calls as shap); then shapgov's Deep explainer (exact MLP mode).
   shap's error at nsamples=100 is reported against the exact values.
2. A 50-feature model: mean absolute error of the sampling modes at equal model
   evaluations, against a high-budget reference.
3. DeepLIFT on an MLP with 50 inputs and two hidden layers of 64: rows per second, and its
   error against Kernel values.

Run: python benchmarks/bench_kernel.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
warnings.filterwarnings("ignore")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def brute_force(f, X, B):
    """Exact interventional Shapley values by the definition (the oracle)."""
    from itertools import combinations
    from math import factorial

    n, m = X.shape
    v = {}
    for size in range(m + 1):
        for S in combinations(range(m), size):
            h = np.repeat(B[None], n, axis=0)
            h[:, :, list(S)] = X[:, None, list(S)]
            v[S] = f(h.reshape(-1, m)).reshape(n, len(B)).mean(axis=1)
    phi = np.zeros((n, m))
    for j in range(m):
        for S, val in v.items():
            if j in S:
                continue
            w = factorial(len(S)) * factorial(m - len(S) - 1) / factorial(m)
            phi[:, j] += w * (v[tuple(sorted((*S, j)))] - val)
    return phi


def example(quick: bool) -> None:
    import shap
    from seed_models import diabetes_mlp

    import shapgov
    from shapgov.explainers.kernelshap import kernel_shap

    model, X_train, X_test = diabetes_mlp()
    rows = X_test[:40] if quick else X_test
    print(f"\n1. example: {len(rows)} rows x {len(X_train)} background rows, 10 features")
    kernel_shap(model.predict, rows[:2], X_train, progress=False)  # warm
    shapgov.explain(model, rows[:2], background=X_train)  # compile / load the MLP kernel
    sh, t_shap = timed(
        lambda: shap.KernelExplainer(model.predict, X_train).shap_values(
            rows, nsamples="auto", silent=True
        )
    )
    ours, t_ours = timed(lambda: kernel_shap(model.predict, rows, X_train, progress=False))
    same, t_same = timed(
        lambda: kernel_shap(model.predict, rows, X_train, dedupe=False, progress=False)
    )
    deep, t_deep = timed(lambda: shapgov.explain(model, rows, background=X_train))
    ref = brute_force(model.predict, rows[:5], X_train)
    full = len(rows) * 1024 * len(X_train)
    print(f"   shap KernelExplainer(auto)      : {t_shap:7.2f}s  {full:,} model evaluations")
    print(
        f"   shapgov Kernel, same calls      : {t_same:7.2f}s  -> {t_shap / t_same:.2f}x faster "
        f"({same.n_evaluations:,} evaluations)"
    )
    print(
        f"   shapgov Kernel, deduplicated    : {t_ours:7.2f}s  -> {t_shap / t_ours:.2f}x faster "
        f"({ours.n_evaluations:,} evaluations, {1 - ours.n_evaluations / full:.0%} fewer)"
    )
    print(f"   shapgov Deep (exact MLP mode)   : {t_deep:7.2f}s  -> {t_shap / t_deep:.2f}x faster")
    print(
        "   max |diff| vs brute force (5 rows): Kernel "
        f"{np.abs(ours.values[:5, :, 0] - ref).max():.1e}, same-calls "
        f"{np.abs(same.values[:5, :, 0] - ref).max():.1e}, Deep "
        f"{np.abs(deep.values[:5] - ref).max():.1e}, shap {np.abs(sh[:5] - ref).max():.1e}"
    )
    sh100 = shap.KernelExplainer(model.predict, X_train).shap_values(
        rows, nsamples=100, silent=True
    )
    err = np.abs(sh100 - ours.values[:, :, 0])
    scale = np.abs(ours.values).mean()
    print(
        f"   shap nsamples=100 vs exact: mean |err| {err.mean():.3f}, max {err.max():.3f} "
        f"(mean |value| {scale:.3f})"
    )


def sampling(quick: bool) -> None:
    import shap
    from sklearn.neural_network import MLPRegressor

    from shapgov.explainers.kernelshap import kernel_shap

    rng = np.random.default_rng(0)
    m = 50
    X = rng.normal(size=(3000, m))
    y = X[:, :10] @ rng.normal(size=10) + np.sin(2 * X[:, 10]) * X[:, 11] + X[:, 12] * X[:, 13]
    model = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, y)
    rows, bg = X[:10], X[100:120]
    print(f"\n2. sampling: 50 features, {len(rows)} rows, {len(bg)} background rows")
    reference = kernel_shap(
        model.predict, rows, bg, mode="sampling", n_samples=2**15, random_state=99, progress=False
    ).values[:, :, 0]
    budgets = [600, 1200] if quick else [600, 1200, 2400, 4800]
    for budget in budgets:
        ours = kernel_shap(
            model.predict,
            rows,
            bg,
            mode="sampling",
            n_samples=budget,
            random_state=1,
            progress=False,
        ).values[:, :, 0]
        explainer = shap.KernelExplainer(model.predict, bg)
        theirs = explainer.shap_values(rows, nsamples=budget, silent=True)
        plain = explainer.shap_values(rows, nsamples=budget, silent=True, l1_reg=0)
        e_ours = np.abs(ours - reference).mean()
        e_theirs = np.abs(theirs - reference).mean()
        e_plain = np.abs(plain - reference).mean()
        print(
            f"   {budget:5d} coalitions/row: shapgov MAE {e_ours:.4f}, shap MAE {e_theirs:.4f} "
            f"-> {e_theirs / e_ours:.2f}x lower (shap with l1_reg=0: {e_plain:.4f}, "
            f"{e_plain / e_ours:.2f}x)"
        )


def deeplift(quick: bool) -> None:
    from sklearn.neural_network import MLPRegressor

    from shapgov.explainers.deeplift import deeplift_values
    from shapgov.explainers.kernelshap import kernel_shap
    from shapgov.explainers.network import Network

    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 50))
    y = np.tanh(X[:, :5].sum(1)) + X[:, 5] * X[:, 6] + 0.1 * X[:, 7:].sum(1)
    mlp = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=200, random_state=0).fit(X, y)
    n = 200 if quick else 1000
    rows, bg = X[:n], X[2000:2100]
    print(f"\n3. DeepLIFT: MLP 50 -> 64 -> 64 -> 1 (relu), {n} rows, {len(bg)} background rows")
    network = Network.from_sklearn(mlp)
    deeplift_values(network, rows[:2], bg)
    (phi, _), t = timed(lambda: deeplift_values(network, rows, bg))
    print(f"   {t:.2f}s, {n / t:,.0f} rows/s")
    kernel = kernel_shap(
        mlp.predict,
        rows[:10],
        bg,
        mode="sampling",
        n_samples=2**14,
        random_state=0,
        progress=False,
    )
    err = np.abs(phi[:10, :, 0] - kernel.values[:, :, 0])
    print(
        f"   vs Kernel values (10 rows, 16384 coalitions; its own s.e. "
        f"{kernel.std_error.mean():.4f}): mean |diff| {err.mean():.4f}, max {err.max():.4f}, "
        f"mean |value| {np.abs(kernel.values).mean():.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and budgets")
    parser.add_argument(
        "--only", choices=["example", "sampling", "deeplift"], help="run one workload"
    )
    args = parser.parse_args()
    for name, run in (("example", example), ("sampling", sampling), ("deeplift", deeplift)):
        if args.only in (None, name):
            run(args.quick)


if __name__ == "__main__":
    main()
