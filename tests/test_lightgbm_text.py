"""The LightGBM model text read into flat trees equals the former walk of the JSON dump
(``tests/lightgbm_json.py``), array by array and dtype by dtype, on boosters with
categorical splits, every missing-value rule, several classes and single-leaf trees."""

from __future__ import annotations

import dataclasses

import lightgbm
import numpy as np
import pytest
from lightgbm_json import parse_booster_json

from shapgov.errors import UnsupportedModelError
from shapgov.explainers.lightgbm_trees import parse_booster, parse_model_string


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3000, 6))
    X[:, 0] = rng.integers(0, 40, 3000)  # categories past one 32-bit word
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.nan_to_num(X[:, 1]) + np.nan_to_num(X[:, 0]) % 3 + np.nan_to_num(X[:, 2] * X[:, 3])
    return X, y


def _boosters():
    X, y = _data()
    labels = np.digitize(y, np.quantile(y, [0.3, 0.6]))
    cat = dict(categorical_feature=[0])
    yield (
        "categorical",
        lightgbm.train({"verbose": -1, "num_leaves": 20}, lightgbm.Dataset(X, y, **cat), 30),
    )
    yield (
        "zero as missing",
        lightgbm.train({"verbose": -1, "zero_as_missing": True}, lightgbm.Dataset(X, y), 10),
    )
    yield (
        "missing as zero",
        lightgbm.train({"verbose": -1, "use_missing": False}, lightgbm.Dataset(X, y), 10),
    )
    yield (
        "multiclass",
        lightgbm.train(
            {"verbose": -1, "objective": "multiclass", "num_class": 3},
            lightgbm.Dataset(X, labels, **cat),
            8,
        ),
    )
    yield (
        "single leaves",
        lightgbm.train(
            {"verbose": -1, "objective": "binary", "min_gain_to_split": 1e9},
            lightgbm.Dataset(X, (y > 0).astype(int)),
            3,
        ),
    )


@pytest.mark.parametrize(("name", "booster"), list(_boosters()))
def test_model_text_gives_the_json_walks_arrays(name, booster):
    ours, oracle = parse_booster(booster), parse_booster_json(booster)
    for field in dataclasses.fields(oracle):
        a, b = getattr(ours, field.name), getattr(oracle, field.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, (name, field.name)
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: {field.name}")
        else:
            assert a == b, (name, field.name)
    X, _ = _data()
    from naive import predict_reference

    raw = booster.predict(X[:200], raw_score=True)
    np.testing.assert_allclose(
        predict_reference(ours, X[:200]).reshape(raw.shape), raw, rtol=0, atol=1e-12
    )


def test_linear_trees_and_text_without_trees_are_refused():
    X, y = _data(1)
    X = np.nan_to_num(X)
    model = lightgbm.LGBMRegressor(n_estimators=3, linear_tree=True, verbose=-1).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="linear_tree"):
        parse_booster(model.booster_)
    with pytest.raises(UnsupportedModelError, match="no trees"):
        parse_model_string("tree\nversion=v4\n")
