"""The default sampling estimator in two settings ``bench_estimation.py`` does not cover:
rows explained one at a time (as a serving call does) and a background of 100 rows (10
games of 10 background rows each). shapgov only; truth as in ``bench_estimation.py``.

    OMP_NUM_THREADS=1 python benchmarks/bench_estimation_settings.py alone dense 600
    OMP_NUM_THREADS=1 python benchmarks/bench_estimation_settings.py grouped dense 600

Prints MAE and the share of values within 2 standard errors (the reference's own error
counted for the MLP) over ``--seeds`` seeds.
"""

from __future__ import annotations

import argparse

import bench_estimation as be
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("setting", choices=("alone", "grouped"))
    parser.add_argument("workload", choices=("sparse", "dense", "mlp"))
    parser.add_argument("budget", type=int)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if args.setting == "grouped":
        be.N_BACKGROUND = 100
    work = {
        "sparse": lambda: be._lightgbm("sparse", 15),
        "dense": lambda: be._lightgbm("dense", 31),
        "mlp": lambda: be._mlp(20000),
    }[args.workload]()
    parts = [slice(r, r + 1) for r in range(len(work.rows))]
    if args.setting == "grouped":
        parts = [slice(None)]
    for est in ("odd", "leverage"):
        errs, cover = [], []
        for seed in range(args.seeds):
            for part in parts:
                one = be.Workload(work.name, work.f, work.rows[part], work.background, None)
                phi, se, _, _ = be.run_shapgov(one, args.budget, seed, est)
                e = phi - work.truth[part]
                if work.truth_se is not None:
                    se = np.sqrt(se**2 + work.truth_se[part] ** 2)
                errs.append(np.abs(e).mean())
                cover.append((np.abs(e) <= 2 * se).mean())
        print(
            f"{args.workload} {args.setting} {args.budget} {est}: MAE {np.mean(errs):.3e} "
            f"coverage {np.mean(cover):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
