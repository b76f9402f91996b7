"""The numba kernels' Python twins: with ``NUMBA_DISABLE_JIT=1`` every ``@njit`` function
runs as the plain Python it is written in. On small cases both must equal the oracles, so
a kernel whose compiled and interpreted meanings differ (integer overflow, a typed-list
quirk, an out-of-bounds read numba does not check) cannot hide."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

SCRIPT = r"""
import json, sys
import numpy as np, pandas as pd, lightgbm
sys.path.insert(0, sys.argv[1])
from naive import predict_reference
from oracles import (
    brute_force_interactions,
    brute_force_path_dependent,
    brute_force_path_dependent_interactions,
    brute_force_shapley,
)
from shapgov.explainers.kernels.interventional_treeshap import (
    coalition_margins,
    interventional_shap,
)
from shapgov.explainers.kernels.linear_treeshap import linear_path_dependent_shap
from shapgov.explainers.kernels.activations import Activation
from shapgov.explainers.kernels.mlp import mlp_coalition_margins
from shapgov.explainers.network import Network
from shapgov.explainers.kernels.treeshap import path_dependent_interactions, path_dependent_shap
from shapgov.explainers.coalitions import shapley_from_values
from shapgov_plugins.tree import tree_ensemble
import numba

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
X[rng.random(X.shape) < 0.1] = np.nan
X[:, 0] = rng.integers(0, 4, 300)
y = np.nan_to_num(X[:, 0]) * np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 2])
ds = lightgbm.Dataset(X, y, categorical_feature=[0])
booster = lightgbm.train({"num_leaves": 6, "min_data_in_leaf": 5, "verbose": -1}, ds, 4)
ens = tree_ensemble(booster)
rows, bg = X[:3], X[100:108]
err = {}
ref, _ = brute_force_path_dependent(ens, rows)
err["linear_path_dependent"] = float(np.abs(linear_path_dependent_shap(ens, rows)[0] - ref).max())
from shapgov.explainers.kernels import leaf_tables, linear_treeshap
leaf_tables.TABLE_WORK_FACTOR = float("inf")  # the tables however few the rows
linear_treeshap.TABLE_MIN_ROWS, linear_treeshap.BLOCK_ROWS = 0, 2  # leaf tables, 2-row blocks
tabled = linear_path_dependent_shap(ens, rows)[0]
err["path_dependent_leaf_tables"] = float(np.abs(tabled - ref).max())
err["path_dependent"] = float(np.abs(path_dependent_shap(ens, rows)[0] - ref).max())
iref = brute_force_path_dependent_interactions(ens, rows)
err["interactions"] = float(np.abs(path_dependent_interactions(ens, rows)[0] - iref).max())
from shapgov.explainers.kernels.subset_treeshap import subset_path_dependent
err["subset_path_dependent"] = float(np.abs(subset_path_dependent(ens, rows)[0] - ref).max())
sub_inter = subset_path_dependent(ens, rows, interactions=True)[0]
err["subset_interactions"] = float(np.abs(sub_inter - iref).max())
cols = list("abcd")
f = lambda d: predict_reference(ens, d.to_numpy(float))
bref, _ = brute_force_shapley(f, pd.DataFrame(rows, columns=cols), pd.DataFrame(bg, columns=cols))
err["interventional"] = float(np.abs(interventional_shap(ens, rows, bg)[0] - bref).max())
v = coalition_margins(ens, rows, bg, np.arange(4), 4).mean(axis=1)
err["coalition_margins"] = float(np.abs(shapley_from_values(v) - bref).max())
from shapgov.explainers.kernels import background_treeshap as bt
from shapgov.explainers.kernels.background_interactions import background_interactions
err["background_shap"] = float(np.abs(bt.background_shap(ens, rows, bg)[0] - bref).max())
bt.TABLE_MIN_ROWS, bt.BLOCK_ROWS = 0, 2  # leaf tables, blocks of 2 rows (one ragged)
err["leaf_tables"] = float(np.abs(bt.background_shap(ens, rows, bg)[0] - bref).max())
bt.MAX_PATH_FEATURES = 0  # every tree takes the rows x background walk, pairs included
frames = pd.DataFrame(rows, columns=cols), pd.DataFrame(bg, columns=cols)
ibref = brute_force_interactions(f, *frames)
err["walked_interactions"] = float(np.abs(background_interactions(ens, rows, bg) - ibref).max())
W = [rng.normal(size=(4, 5)), rng.normal(size=(5, 1))]
c = [rng.normal(size=5), rng.normal(size=1)]
Z, Zb = rng.normal(size=(3, 4)), rng.normal(size=(6, 4))
def net(d):
    a = np.tanh(np.asarray(d, float) @ W[0] + c[0])
    return a @ W[1] + c[1]
mref, _ = brute_force_shapley(net, pd.DataFrame(Z), pd.DataFrame(Zb))
tanh = Network((W[0], W[1]), (c[0], c[1]), (Activation("tanh"),))
v = mlp_coalition_margins(tanh, Z, Zb, np.arange(4), 4).mean(axis=1)
err["mlp_coalition_margins"] = float(np.abs(shapley_from_values(v) - mref).max())
try:  # CatBoost's symmetric trees: the numba expansion and the oblivious kernel
    import catboost
except ImportError:
    catboost = None
if catboost is not None:
    from shapgov_plugins.catboost_json import CatBoostTrees
    from shapgov_plugins.catboost_trees import model_json
    Xc = np.nan_to_num(X)
    cb = catboost.CatBoostRegressor(iterations=4, depth=3, verbose=0, random_seed=0,
                                    allow_writing_files=False).fit(Xc, y)
    cens = CatBoostTrees(model_json(cb)).ensemble()
    crows = Xc[:3]
    err["catboost_expansion"] = float(np.abs(predict_reference(cens, crows)[:, 0]
        - cb.predict(crows, prediction_type="RawFormulaVal")).max())
    cref, _ = brute_force_path_dependent(cens, crows)
    ophi = subset_path_dependent(cens, crows)[0]
    err["oblivious_path_dependent"] = float(np.abs(ophi - cref).max())
    ointer = subset_path_dependent(cens, crows, interactions=True)[0]
    oref = brute_force_path_dependent_interactions(cens, crows)
    err["oblivious_interactions"] = float(np.abs(ointer - oref).max())
    from shapgov.explainers.kernels.oblivious_interventional import oblivious_interventional_shap
    cbg = Xc[100:106]
    fc = lambda d: cb.predict(d.to_numpy(float), prediction_type="RawFormulaVal")[:, None]
    ciref, _ = brute_force_shapley(fc, pd.DataFrame(crows), pd.DataFrame(cbg))
    civ = oblivious_interventional_shap(cens, crows, cbg)[0]
    err["oblivious_interventional"] = float(np.abs(civ - ciref).max())
print(json.dumps({"jit_disabled": bool(numba.config.DISABLE_JIT), "errors": err}))
"""


@pytest.mark.parametrize("disable_jit", ["1", "0"])
def test_kernels_and_their_python_twins_equal_the_oracles(disable_jit):
    env = {**os.environ, "NUMBA_DISABLE_JIT": disable_jit}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TESTS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["jit_disabled"] is (disable_jit == "1")
    assert len(result["errors"]) == 16 if importlib.util.find_spec("catboost") else 12
    for kernel, error in result["errors"].items():
        assert error <= 1e-10, f"{kernel}: {error}"
