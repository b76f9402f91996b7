"""The additivity policy: pass, warn and fail exactly at the thresholds; withheld values."""

from __future__ import annotations

import gc
import sys
import types

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

import shapgov
from shapgov.combination.explanation import Explanation
from shapgov.combination.policy import AdditivityPolicy, evaluate, normalized_mismatch
from shapgov.errors import AdditivityError, AdditivityWarning, InputError


@pytest.fixture
def clipped(test_plugin):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    upper = float(np.quantile(Ridge().fit(X, y).predict(X), 0.9))
    model = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(X, y)
    return model, X, upper


def _mismatch(model, X):
    with pytest.warns(AdditivityWarning):
        e = shapgov.explain(model, X, additivity_threshold=1.0)
    return e.additivity.max_normalized_mismatch


def test_undeclared_capping_warns_or_fails_exactly_at_threshold(clipped):
    model, X, _ = clipped
    r = _mismatch(model, X)
    assert 0 < r < 1
    with pytest.warns(AdditivityWarning, match="additivity warn"):
        e = shapgov.explain(model, X, additivity_threshold=r * (1 + 1e-9))
    assert e.additivity.status == "warn"
    assert e.additivity.n_over_threshold == 0
    with pytest.raises(AdditivityError) as info:
        shapgov.explain(model, X, additivity_threshold=r * (1 - 1e-9))
    report = info.value.report
    assert report.status == "fail"
    assert report.max_normalized_mismatch == pytest.approx(r, rel=1e-12)
    clipped_rows = np.flatnonzero(model.regressor_.predict(X) > model.upper)
    assert set(report.mismatched_rows) <= set(clipped_rows)
    assert report.n_over_threshold >= 1


def test_pass_tolerance_bounds_the_warn_band(clipped):
    model, X, _ = clipped
    r = _mismatch(model, X)
    e = shapgov.explain(model, X, additivity_threshold=2 * r, pass_tolerance=r)
    assert e.additivity.max_normalized_mismatch == pytest.approx(r, rel=1e-12)
    assert e.additivity.n_mismatched == 0


def test_declared_capping_is_additive(clipped):
    model, X, upper = clipped
    e = shapgov.explain(model, X, capping=(None, upper))
    rebuilt = np.minimum(e.explained_output[:, 0], upper)
    assert np.max(np.abs(rebuilt - model.predict(X))) <= 1e-10 * upper
    assert e.additivity.applied["capping"] == [None, upper]


def test_default_threshold_is_one_percent_and_fails_on_undeclared_capping(clipped):
    model, X, _ = clipped
    assert _mismatch(model, X) > 0.01
    with pytest.raises(AdditivityError, match="withheld"):
        shapgov.explain(model, X)


def test_withheld_values_cannot_be_reached(clipped):
    model, X, _ = clipped
    n, m = X.shape
    try:
        shapgov.explain(model, X)
    except AdditivityError as err:
        error = err
    else:  # pragma: no cover
        pytest.fail("expected AdditivityError")
    assert error.__cause__ is None and error.__context__ is None
    seen = []
    tb = error.__traceback__
    while tb is not None:
        seen.extend(tb.tb_frame.f_locals.values())
        tb = tb.tb_next
    seen.extend(vars(error).values())
    seen.extend(vars(error.report).values())
    gc.collect()
    for obj in seen:
        if isinstance(obj, np.ndarray):
            assert obj.shape[:2] != (n, m), "an (n, M) array survived the failed check"
        assert not isinstance(obj, shapgov.Explanation)
    del error
    sys.last_value = None


def test_offset_and_exposure_follow_datarobot_rule(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge().fit(X, y)
    offset = np.linspace(-1, 1, len(X))
    exposure = np.linspace(0.5, 2, len(X))
    e = shapgov.explain(model, X, offset=offset, exposure=exposure, capping=(0, 250))
    rebuilt = np.clip((e.explained_output[:, 0] + offset) * exposure, 0, 250)
    expected = np.clip((model.predict(X) + offset) * exposure, 0, 250)
    assert np.max(np.abs(rebuilt - expected)) <= 1e-10 * 250
    assert e.additivity.applied == {
        "link": "identity",
        "offset": True,
        "exposure": True,
        "capping": [0, 250],
        "prediction": "predict",
    }
    # the prediction the check saw is kept, and travels with slices and parquet files
    governed = np.clip((model.predict(X) + offset) * exposure, 0, 250)
    np.testing.assert_array_equal(e.prediction[:, 0], governed)
    assert 0 < (governed == 250).sum() < len(X)  # capping really bites on some rows
    rebuilt = np.clip((e.base_values + e.values.sum(axis=1) + offset) * exposure, 0, 250)
    np.testing.assert_allclose(rebuilt, governed, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(e[5:9].prediction, e.prediction[5:9])
    path = e.to_parquet(tmp_path / "e.parquet")
    np.testing.assert_array_equal(Explanation.read_parquet(path).prediction, e.prediction)


def test_normalization_behaves_near_zero():
    actual = np.array([[1e-9], [0.0], [2.0], [4.0]])
    rebuilt = actual + np.array([[1e-3], [1e-3], [0.0], [0.0]])
    norm = normalized_mismatch(rebuilt, actual)
    # rows near zero are judged against the mean |prediction| (1.5), not against ~0
    np.testing.assert_allclose(norm, [1e-3 / 1.5, 1e-3 / 1.5, 0, 0])
    assert np.isfinite(normalized_mismatch(np.zeros((3, 1)), np.zeros((3, 1)))).all()


def test_non_finite_rebuilt_values_fail():
    report = evaluate(np.array([[np.nan], [1.0]]), np.array([[1.0], [1.0]]), AdditivityPolicy())
    assert report.status == "fail" and report.mismatched_rows == (0,)


def test_policy_rejects_inverted_thresholds():
    with pytest.raises(InputError, match="pass_tolerance <= threshold"):
        AdditivityPolicy(threshold=1e-6, pass_tolerance=1e-3)


def test_explanation_cannot_be_built_without_a_passing_report():
    with pytest.raises(InputError):
        shapgov.Explanation(
            raw_values=np.zeros((1, 1, 1)),
            expected_value=np.zeros(1),
            data=None,
            output_space="raw",
            link=None,
            task="regression",
            classes=None,
            vertices=[],
            additivity=types.SimpleNamespace(status="pass"),
            model_class="x",
            composites=[],
            shapgov_version="0",
        )


@pytest.fixture(scope="module")
def isotonic():
    from cases import cancer, scaled
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    X, y = cancer()
    model = CalibratedClassifierCV(scaled(LogisticRegression()), method="isotonic", cv=3)
    return model.fit(X, y), X


def test_isotonic_over_margins_warns_or_fails_exactly_at_threshold(isotonic):
    model, X = isotonic
    rows, bg = X.iloc[:60], X.iloc[::10]
    with pytest.warns(AdditivityWarning):
        r = shapgov.explain(
            model, rows, background=bg, calibration="margin", additivity_threshold=1.0
        ).additivity.max_normalized_mismatch
    assert 1e-6 < r < 1
    with pytest.warns(AdditivityWarning):
        e = shapgov.explain(
            model, rows, background=bg, calibration="margin", additivity_threshold=r * (1 + 1e-9)
        )
    assert e.link.name == "isotonic" and e.output_space == "margin"
    with pytest.raises(AdditivityError):
        shapgov.explain(
            model, rows, background=bg, calibration="margin", additivity_threshold=r * (1 - 1e-9)
        )
    # the default explains in probability space, where isotonic calibration is exact
    exact = shapgov.explain(model, rows, background=bg)
    assert exact.output_space == "probability"
    proba = model.predict_proba(rows)[:, 1]
    assert np.max(np.abs(exact.explained_output[:, 0] - proba)) <= 1e-12


def test_isotonic_over_margin_of_one_fold_is_additive(isotonic):
    from sklearn.base import clone

    base, X = isotonic
    model = clone(base).set_params(ensemble=False).fit(X, X.index % 2)
    e = shapgov.explain(model, X.iloc[:30], background=X.iloc[::10], calibration="margin")
    rebuilt = e.link.inverse(e.explained_output)[:, 0]
    assert np.max(np.abs(rebuilt - model.predict_proba(X.iloc[:30])[:, 1])) <= 1e-12
