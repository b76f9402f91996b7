"""The largest oracle errors of tests/test_catboost.py's cases, printed (the tests assert
them <= 1e-10): interventional values against brute force through CatBoost's own raw
formula, path-dependent values against the trees' value function (grouped for CTR
combinations: a combination split is known only when all its columns are).
Run: python benchmarks/catboost_oracle_errors.py
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import numpy as np
from oracles import brute_force_path_dependent, brute_force_shapley
from test_catboost import (
    MODELS,
    _encoded,
    _raw,
    _rows,
    combination_model,
    fitted,
)

import shapgov
from shapgov_plugins.tree import tree_ensemble

for name in sorted(MODELS):
    m = fitted(name)
    X, bg = _rows(m, slice(0, 12)), _rows(m, slice(300, 330))
    e = shapgov.explain(m, X, background=bg, feature_perturbation="interventional")
    ref, _ = brute_force_shapley(_raw(m), X, bg)
    v = e.values if e.values.ndim == 3 else e.values[:, :, None]
    p = shapgov.explain(m, X)
    pref, _ = brute_force_path_dependent(tree_ensemble(m), _encoded(m, X))
    pv = p.values if p.values.ndim == 3 else p.values[:, :, None]
    i_err, p_err = np.abs(v - ref).max(), np.abs(pv - pref).max()
    print(f"{name}: interventional vs brute force {i_err:.1e}; path-dependent vs value", end="")
    print(f" function {p_err:.1e}")
for kind in ("floats", "one-hot"):
    m, X = combination_model(kind)
    rows, bg = X.iloc[:8], X.iloc[300:320]
    p = shapgov.explain(m, rows)
    pref, _ = brute_force_path_dependent(tree_ensemble(m), _encoded(m, rows))
    e = shapgov.explain(m, rows, background=bg, feature_perturbation="interventional")
    ref, _ = brute_force_shapley(_raw(m), rows, bg)
    p_err, i_err = np.abs(p.values - pref[..., 0]).max(), np.abs(e.values - ref[..., 0]).max()
    print(f"combination-{kind}: path-dependent vs grouped brute force {p_err:.1e}; interventional")
    print(f"  vs brute force {i_err:.1e}")
