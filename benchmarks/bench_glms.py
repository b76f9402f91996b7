"""Benchmark: exact GLM values (shapgov's ``terms`` explainer) against shap's KernelExplainer.

Workload of issue 39: a statsmodels Poisson GLM with exposure, fitted from a patsy formula
on 30 original columns (24 numeric, 6 categorical): splines on 4 columns, 10 two-way
interactions (numeric x numeric and numeric x category), the rest main effects. shapgov
explains 100,000 rows against 200 background rows exactly, in the margin (log) space;
shap's KernelExplainer explains ``--kernel-rows`` rows against the same background through
the model's own ``predict(which="linear")`` (its default ``nsamples = 2 * 30 + 2048``) and
its time is scaled to 1,000 rows (Kernel's cost is linear in rows: ``--kernel-rows 1000``
measures it whole, about half an hour).

Agreement first: Kernel's values against shapgov's on the same rows (max |diff| and its
share of the largest value: Kernel samples, so it agrees to its sampling error, not
exactly); shapgov's local accuracy against the model's own linear predictor on all rows.
Exactness itself is tested in tests/test_glms.py against brute force.

Run: python benchmarks/bench_glms.py [--rows 100000] [--kernel-rows 20]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np
import pandas as pd

N_NUMERIC, N_CATEGORICAL = 24, 6


def table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {f"x{j}": rng.uniform(-3, 3, n) for j in range(N_NUMERIC)}
    for j in range(N_CATEGORICAL):
        cols[f"c{j}"] = rng.choice([f"l{k}" for k in range(3 + j % 3)], n)
    return pd.DataFrame(cols), rng.uniform(0.1, 1.0, n)


FORMULA = (
    "y ~ "
    + " + ".join(f"bs(x{j}, 4, lower_bound=-3, upper_bound=3)" for j in range(4))
    + " + "
    + " + ".join(f"x{j}" for j in range(4, N_NUMERIC))
    + " + "
    + " + ".join(f"C(c{j})" for j in range(N_CATEGORICAL))
    + " + x4:x5 + x6:x7 + x8:x9 + x10:x11 + x12:x13 + x14:x15"
    + " + x16:C(c0) + x17:C(c1) + x18:C(c2) + x19:x20"
)


def fit():
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    X, exposure = table(20_000, 0)
    rng = np.random.default_rng(1)
    eta = -2 + 0.3 * np.sin(X.x0) + 0.2 * X.x4 * X.x5 + 0.1 * X.x6 + 0.2 * (X.c0 == "l1")
    y = rng.poisson(exposure * np.exp(eta))
    return smf.glm(
        FORMULA, data=X.assign(y=y), family=sm.families.Poisson(), exposure=exposure
    ).fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--background", type=int, default=200)
    parser.add_argument("--kernel-rows", type=int, default=20)
    parser.add_argument(
        "--kernel-nsamples",
        default="auto",
        help="shap's nsamples (default auto: 2 * 30 + 2048); more shows Kernel converging",
    )
    parser.add_argument(
        "--kernel-l1",
        default="auto",
        help="shap's l1_reg (default auto: AIC feature selection below 20%% of 2**M "
        "coalitions, a bias that more samples do not remove); 0 turns it off",
    )
    args = parser.parse_args()

    import shapgov

    model = fit()
    X, exposure = table(args.rows, 2)
    background = table(args.background, 3)[0]
    print(f"Poisson GLM, {X.shape[1]} columns, {len(model.params)} coefficients, formula:")
    print(f"  {FORMULA}")

    t0 = time.perf_counter()
    e = shapgov.explain(model, X, background=background, exposure=exposure)
    ours = time.perf_counter() - t0
    own = np.asarray(model.predict(X, which="linear"))
    local = float(np.abs(e.expected_value[0] + e.values.sum(1) - own).max())
    print(
        f"shapgov terms explainer: {args.rows:,} rows x {args.background} background rows in "
        f"{ours:.2f} s ({ours / args.rows * 1e6:.1f} us/row); additivity {e.additivity.status}, "
        f"max |base + sum(phi) - eta| = {local:.2e}"
    )

    import shap

    names = list(X.columns)

    def linear(rows: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(rows, columns=names)
        for j in range(N_NUMERIC):
            frame[f"x{j}"] = frame[f"x{j}"].astype(float)
        return np.asarray(model.predict(frame, which="linear"))

    sample = X.iloc[: args.kernel_rows]
    explainer = shap.KernelExplainer(linear, background.to_numpy(dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        nsamples = (
            args.kernel_nsamples if args.kernel_nsamples == "auto" else int(args.kernel_nsamples)
        )
        l1 = args.kernel_l1 if args.kernel_l1 == "auto" else float(args.kernel_l1)
        theirs = explainer.shap_values(
            sample.to_numpy(dtype=object), nsamples=nsamples, l1_reg=l1, silent=True
        )
        kernel = time.perf_counter() - t0
    theirs = np.asarray(theirs, dtype=float).reshape(len(sample), -1)
    diff = np.abs(theirs - e.values[: len(sample)])
    share = float(diff.max() / np.abs(e.values[: len(sample)]).max())
    print(
        f"shap KernelExplainer (nsamples {args.kernel_nsamples}, l1_reg {args.kernel_l1}): "
        f"{len(sample)} rows in "
        f"{kernel:.1f} s "
        f"({kernel / len(sample):.2f} s/row); agreement with the exact values: max |diff| "
        f"{diff.max():.3g} ({share:.2%} of the largest value), mean |diff| {diff.mean():.3g}"
    )
    kernel_1000 = kernel / len(sample) * 1000
    print(
        f"ratio: shap Kernel on 1,000 rows ({kernel_1000:.0f} s"
        f"{'' if len(sample) == 1000 else ', scaled from ' + str(len(sample)) + ' rows'}) / "
        f"shapgov exact on {args.rows:,} rows ({ours:.1f} s) = {kernel_1000 / ours:.1f}x; "
        f"per row {kernel / len(sample) / (ours / args.rows):,.0f}x"
    )


if __name__ == "__main__":
    main()
