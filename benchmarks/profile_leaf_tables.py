"""Profile: where the many-rows tree route spends its time (issue 40).

Numba kernels do not show inside cProfile, so this times three builds of
``leaf_tables._table_shap`` on the same call: stopped after the split decisions (and the
block's transposes), stopped after the depth-first masks, and whole. The copies are
made from the module's own source with two early ``continue`` lines added, compiled
without the cache; the values of the whole copy are checked against the module's.

Workload: ``bench_background.py``'s LightGBM (100 trees x 31 leaves, 30 features),
200,000 rows, 100 background rows, interventional game, 1 thread by default.

Run: NUMBA_NUM_THREADS=1 python benchmarks/profile_leaf_tables.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import types

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, os.path.dirname(__file__))

from bench_background import lightgbm_model


def staged_kernel():
    """``_table_shap`` with a trailing ``stage`` argument: 0 stops after the decisions,
    1 after the masks, 2 runs whole."""
    from shapgov.explainers.kernels import leaf_tables

    src = inspect.getsource(leaf_tables)
    edits = [
        ("    block, twig_ptr, twig_tables,\n):", "    block, twig_ptr, twig_tables, stage,\n):"),
        ("            m0 = masks[0]\n", "            if stage == 0:\n                continue\n"
         "            m0 = masks[0]\n"),
        ("                tw = twig_ptr[i]\n", "                if stage == 1 and twig_ptr[i] >= 0:"
         "\n                    continue\n                tw = twig_ptr[i]\n"),
        ("                L = leaf_of[i]\n                d = feat_ptr",
         "                if stage == 1:\n                    continue\n"
         "                L = leaf_of[i]\n                d = feat_ptr"),
        ("cache=True", "cache=False"),
    ]  # fmt: skip
    for old, new in edits:
        if old not in src:
            raise SystemExit(f"leaf_tables.py changed; update this profile ({old[:40]!r})")
        src = src.replace(old, new)
    module = types.ModuleType("staged_leaf_tables")
    exec(compile(src, "staged_leaf_tables", "exec"), module.__dict__)
    return module._table_shap


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    from shapgov.explainers.kernels import background_treeshap as bt
    from shapgov_plugins.tree import tree_ensemble

    model, X = lightgbm_model()
    ens = tree_ensemble(model)
    rng = np.random.default_rng(40)
    rows = rng.normal(size=(args.rows, X.shape[1]))
    bg = X[-100:]
    reference, _ = bt.background_shap(ens, rows, bg)
    kernel, staged = bt._table_shap, staged_kernel()
    times = {}
    try:
        for stage, label in enumerate(("split decisions and transposes", "+ masks", "whole")):
            bt._table_shap = lambda *a, s=stage: staged(*a, s)
            bt.background_shap(ens, rows[:25_000], bg)  # compile
            t0 = time.perf_counter()
            phi, _ = bt.background_shap(ens, rows, bg)
            times[label] = time.perf_counter() - t0
    finally:
        bt._table_shap = kernel
    if np.abs(phi - reference).max() > 1e-12 * np.abs(reference).max():
        raise SystemExit("the staged copy disagrees with the module's kernel")
    whole = times["whole"]
    decisions, masks = times["split decisions and transposes"], times["+ masks"]
    print(f"{args.rows:,} rows, the table route: {whole:.2f} s in all")
    print(
        f"  split decisions and block transposes {decisions:6.2f} s {100 * decisions / whole:5.1f}%"
    )
    print(f"  depth-first masks                    {masks - decisions:6.2f} s "
          f"{100 * (masks - decisions) / whole:5.1f}%")  # fmt: skip
    print(f"  table lookups and adds               {whole - masks:6.2f} s "
          f"{100 * (whole - masks) / whole:5.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
