"""Profile: where the Kernel explainer's sampling mode spends a row (issue 40).

cProfile of ``bench_estimation.run_shapgov`` on its ``dense`` workload (LightGBM 100 x 31
leaves on 50 features, 10 background rows), single thread, at the given budgets; prints
seconds per row and the share of the main parts: the LightGBM surrogates' training,
reading their trees, their odd spectra (``support``), the odd regression, the model's
own evaluations.

Run: OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/profile_kernel_sampling.py
     [--rows 10] [--budgets 600,4800]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, os.path.dirname(__file__))

import bench_estimation as be

PARTS = {
    "surrogate training (lightgbm engine.train)": ("engine.py", "train"),
    "reading the surrogate's trees (parse_booster)": ("lightgbm_trees.py", "parse_booster"),
    "odd spectra (support)": ("odd_regression.py", "support"),
    "odd regression": ("odd_regression.py", "odd_regression"),
    "model evaluations (game_model_rows)": ("sampled_kernel.py", "game_model_rows"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--budgets", default="600,4800")
    args = parser.parse_args()
    work = be._lightgbm("dense", 31)
    sub = be.Workload(work.name, work.f, work.rows[: args.rows], work.background,
                      work.truth[: args.rows])  # fmt: skip
    one = be.Workload(work.name, work.f, work.rows[:1], work.background, work.truth[:1])
    be.run_shapgov(one, 600, 0, "odd")  # compiles or loads the kernels
    for budget in (int(b) for b in args.budgets.split(",")):
        _, _, per_row, _ = be.run_shapgov(sub, budget, 0, "odd")
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.runcall(be.run_shapgov, sub, budget, 0, "odd")
        wall = time.perf_counter() - t0
        stats = pstats.Stats(profile).stats
        print(f"\n{budget} coalitions a row, {args.rows} rows: {per_row:.3f} s a row "
              f"(profiled {wall:.1f} s)")  # fmt: skip
        for label, (file, name) in PARTS.items():
            cum = sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name)
            print(f"  {label:48s} {cum:7.2f} s  {100 * cum / wall:5.1f}%")


if __name__ == "__main__":
    main()
