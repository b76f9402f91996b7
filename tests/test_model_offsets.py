"""Offsets a model takes itself (issue 30, item 12): XGBoost's ``base_margin``, LightGBM's
``init_score``.

XGBoost's ``predict(X, base_margin=o)`` *replaces* ``base_score`` with ``o`` (xgboost#6546).
Adding the offset on top of ``base_score`` (DataRobot's rule) gave ``e.prediction`` off by
``base_score`` on every row, and the check passed because it compared the rebuild with a
prediction rebuilt the same way. The check now compares with the model's own output,
computed the model's own way; the tests below hold the explanation to that output, to
brute-force Shapley values over every coalition and to the libraries' own contributions,
and show that a wrong offset fails the check.
"""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from naive import predict_reference
from oracles import brute_force_path_dependent, brute_force_shapley
from scipy.special import expit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
from shapgov import hookimpl
from shapgov.combination.policy import AdditivityPolicy, check
from shapgov.decomposition.links import LOG
from shapgov.decomposition.offsets import ModelOffset
from shapgov.errors import AdditivityError, FallbackWarning, InputError
from shapgov.opaque import BlackBox
from shapgov.registry import make_plugin_manager
from shapgov_plugins.tree import tree_ensemble

F32 = float(np.finfo(np.float32).eps)


def _claims(seed: int = 0, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Claim counts over an exposure (years insured): ``y ~ Poisson(expo * exp(f(X)))``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["age", "power", "density", "bonus"])
    expo = rng.uniform(0.2, 3.0, n)
    rate = np.exp(0.4 * X["age"] - 0.3 * X["power"] * X["density"] + 0.2 * X["bonus"])
    return X, rng.poisson(expo * rate.to_numpy()), expo


def _xgb_poisson() -> tuple[xgb.XGBRegressor, pd.DataFrame, np.ndarray]:
    X, y, expo = _claims()
    model = xgb.XGBRegressor(objective="count:poisson", n_estimators=40, max_depth=3)
    return model.fit(X, y, base_margin=np.log(expo)), X, expo


def test_xgboost_base_margin_prediction_is_the_models_own():
    """The issue's case: count:poisson trained with base_margin=log(exposure)."""
    m, X, expo = _xgb_poisson()
    rows, offset = X[:6], np.log(expo[:6])
    ens = tree_ensemble(m)
    assert abs(ens.base_offset[0]) > 0.5  # log(base_score): the old handling was off by it
    e = shapgov.explain(m, rows, offset=offset)
    own = m.predict(rows, base_margin=offset).astype(float)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12  # was base_score (2.11)
    assert e.additivity.status == "pass"
    assert e.additivity.applied["offset_taken_by"].startswith("XGBoost base_margin")
    # the rebuild from the values alone reproduces the model's output (float32 model)
    rebuilt = np.exp(e.expected_value[0] + e.values.sum(axis=1) + offset)
    assert np.max(np.abs(rebuilt / own - 1)) <= 64 * F32
    # values: brute force over the parsed trees (the path-dependent game, no background),
    # and XGBoost's own pred_contribs given the same base_margin
    ref, ref_base = brute_force_path_dependent(ens, rows.to_numpy(float))
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    # the offset replaces base_score: the base value is the trees' alone, and so is the
    # base of the one vertex that took it (the parts add up to the whole)
    assert abs(e.expected_value[0] - (ref_base[0] - ens.base_offset[0])) <= 1e-10
    assert len(e.vertices) == 1 and e.vertices[0].base[0] == e.expected_value[0]
    dm = xgb.DMatrix(rows, base_margin=offset)
    contrib = m.get_booster().predict(dm, pred_contribs=True)
    scale = np.abs(contrib).max()
    assert np.max(np.abs(e.values - contrib[:, :-1])) <= 1e-5 * scale
    assert np.max(np.abs(e.expected_value[0] + offset - contrib[:, -1])) <= 1e-5 * scale


def test_xgboost_base_margin_interventional_against_brute_force():
    m, X, expo = _xgb_poisson()
    rows, bg, offset = X[:6], X[1000:1030], np.log(expo[:6])
    e = shapgov.explain(m, rows, background=bg, offset=offset)
    assert e.feature_perturbation == "interventional"
    ens = tree_ensemble(m)
    ref, ref_base = brute_force_shapley(
        lambda d: predict_reference(ens, d.to_numpy(float)) - ens.base_offset, rows, bg
    )
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - ref_base)) <= 1e-10
    # the same base value through XGBoost's own margin with a zero base_margin (float32)
    own_base = m.predict(bg, output_margin=True, base_margin=np.zeros(len(bg))).mean()
    assert abs(e.expected_value[0] - own_base) <= 64 * F32 * np.abs(own_base).max()
    own = m.predict(rows, base_margin=offset).astype(float)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12


class _OnTopOfBaseScore:
    """The old handling, as a plugin: the offset added on top of base_score."""

    @hookimpl(tryfirst=True)
    def shapgov_model_offset(self, model, plugins):
        if not isinstance(model, xgb.XGBModel):
            return None
        return ModelOffset(
            "added on top of base_score",
            np.zeros(1),
            lambda X, o: model.predict(X, base_margin=o[:, 0]),
        )


def test_a_wrong_offset_fails_the_check():
    """The check can fail: the offset handled the old way, or a wrong offset, against the
    model's own output with the right one."""
    m, X, expo = _xgb_poisson()
    rows, offset = X[:6], np.log(expo[:6])
    pm = make_plugin_manager()
    pm.register(_OnTopOfBaseScore(), name="on-top-of-base-score")
    with pytest.raises(AdditivityError) as info:
        shapgov.explain(m, rows, offset=offset, plugin_manager=pm)
    report = info.value.report
    assert report.status == "fail" and report.n_over_threshold == 6
    assert report.max_normalized_mismatch > 0.5  # off by base_score (2.11) on every row
    e = shapgov.explain(m, rows, offset=offset)
    own = m.predict(rows, base_margin=offset)
    policy = AdditivityPolicy()
    for wrong in (offset + 0.05, offset[::-1], np.zeros_like(offset)):
        rep, _ = check(
            LOG,
            "predict",
            e.explained_output,
            own[:, None],
            policy,
            offset=wrong[:, None],
            exposure=None,
            capping=None,
            offset_taken_by="XGBoost base_margin (replaces base_score)",
        )
        assert rep.status == "fail"
    rep, _ = check(
        LOG,
        "predict",
        e.explained_output,
        own[:, None],
        policy,
        offset=offset[:, None],
        exposure=None,
        capping=None,
        offset_taken_by="XGBoost base_margin (replaces base_score)",
    )
    assert rep.status == "pass"


def test_xgboost_classifier_and_pipeline_take_base_margin_their_own_way():
    X, y, expo = _claims(1)
    label = (y > 0).astype(int)
    logit_offset = np.log(expo) - 1.0
    clf = xgb.XGBClassifier(n_estimators=30, max_depth=3, base_score=0.3)
    clf.fit(X, label, base_margin=logit_offset)
    rows, off = X[:8], logit_offset[:8]
    e = shapgov.explain(clf, rows, background=X[1000:1020], offset=off)
    own = clf.predict_proba(rows, base_margin=off)[:, 1].astype(float)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12
    assert e.additivity.status == "pass"
    rebuilt = expit(e.expected_value[0] + e.values.sum(axis=1) + off)
    assert np.max(np.abs(rebuilt - own)) <= 64 * F32
    pipe = make_pipeline(
        StandardScaler(), xgb.XGBRegressor(objective="count:poisson", n_estimators=30)
    )
    pipe.fit(X, y, xgbregressor__base_margin=np.log(expo))
    rows, off = X[:6], np.log(expo[:6])
    e = shapgov.explain(pipe, rows, background=X[1000:1020], offset=off)
    own = pipe.predict(rows, base_margin=off).astype(float)  # the Pipeline routes it
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12
    assert e.additivity.status == "pass"
    grouped = shapgov.explain_groups(
        pipe, rows, players={"car": ["power", "density"]}, background=X[1000:1020], offset=off
    )
    assert np.max(np.abs(grouped.base_value - e.expected_value)) <= 1e-12
    assert grouped.additivity.status == "pass"


def test_a_whole_model_takes_the_offset_as_the_model_inside_does():
    """Explained through its outputs (Kernel), the check judges against the model's own
    output with the offset: right where the explained space can take it (log-odds of a
    classifier), a failure where it cannot (counts explained on their own scale)."""
    X, y, expo = _claims(2, n=800)
    label = (y > 0).astype(int)
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, label)
    rows, bg, off = X[:5], X[400:420], np.log(expo[:5])
    e = shapgov.explain(BlackBox(clf, link="logit"), rows, background=bg, offset=off)
    own = clf.predict_proba(rows, base_margin=off)[:, 1].astype(float)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12
    assert e.additivity.status == "pass"
    m = xgb.XGBRegressor(objective="count:poisson", n_estimators=20).fit(X, y)
    with pytest.raises(AdditivityError):
        shapgov.explain(m, rows, background=bg, offset=off, opaque=True)


def _lgbm_counts() -> tuple[lightgbm.LGBMRegressor, pd.DataFrame, np.ndarray]:
    X, y, expo = _claims(3)
    model = lightgbm.LGBMRegressor(objective="poisson", n_estimators=40, num_leaves=8, verbose=-1)
    return model.fit(X, y, init_score=np.log(expo)), X, expo


def test_lightgbm_init_score_prediction_is_the_models_own():
    m, X, expo = _lgbm_counts()
    rows, bg, offset = X[:6], X[1000:1030], np.log(expo[:6])
    own = np.exp(m.predict(rows, raw_score=True) + offset)  # LightGBM's documented way
    e = shapgov.explain(m, rows, offset=offset)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12
    assert e.additivity.status == "pass"
    assert e.additivity.applied["offset_taken_by"].startswith("LightGBM init_score")
    contrib = m.predict(rows, pred_contrib=True)
    assert np.max(np.abs(e.values - contrib[:, :-1])) <= 1e-10
    assert np.max(np.abs(e.expected_value[0] - contrib[0, -1])) <= 1e-10
    rebuilt = np.exp(e.expected_value[0] + e.values.sum(axis=1) + offset)
    assert np.max(np.abs(rebuilt / own - 1)) <= 1e-12
    ei = shapgov.explain(m, rows, background=bg, offset=offset)
    ref, ref_base = brute_force_shapley(lambda d: m.predict(d, raw_score=True), rows, bg)
    assert np.max(np.abs(ei.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(ei.expected_value - ref_base)) <= 1e-10
    assert np.max(np.abs(ei.prediction[:, 0] / own - 1)) <= 1e-12
    policy = AdditivityPolicy()
    for wrong in (offset + 0.05, offset[::-1]):
        rep, _ = check(
            LOG,
            "predict",
            ei.explained_output,
            own[:, None],
            policy,
            offset=wrong[:, None],
            exposure=None,
            capping=None,
            offset_taken_by="LightGBM init_score (added to the raw score)",
        )
        assert rep.status == "fail"


def test_lightgbm_classifier_init_score_prediction_is_the_models_own():
    X, y, expo = _claims(4)
    label = (y > 0).astype(int)
    init = np.log(expo) - 1.0
    clf = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1)
    clf.fit(X, label, init_score=init)
    rows, bg, off = X[:8], X[1000:1030], init[:8]
    e = shapgov.explain(clf, rows, background=bg, offset=off)
    own = expit(clf.predict_proba(rows, raw_score=True) + off)
    assert np.max(np.abs(e.prediction[:, 0] / own - 1)) <= 1e-12
    ref, ref_base = brute_force_shapley(lambda d: clf.predict_proba(d, raw_score=True), rows, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10
    assert np.max(np.abs(e.expected_value - ref_base)) <= 1e-10
    assert e.additivity.max_normalized_mismatch <= 1e-12


def test_an_offset_the_explained_margin_cannot_take_is_refused_with_advice():
    X, y, _ = _claims(5, n=600)
    hinge = xgb.XGBClassifier(objective="binary:hinge", n_estimators=5).fit(X, (y > 0))
    with pytest.warns(FallbackWarning), pytest.raises(InputError, match="without offset"):
        shapgov.explain(hinge, X[:3], background=X[100:110], offset=np.zeros(3))
