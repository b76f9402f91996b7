"""Bad input gets a typed error that says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from cases import preprocess
from oracles import brute_force_shapley
from sklearn.datasets import load_diabetes
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline

import shapgov
from shapgov.errors import (
    ColumnMismatchError,
    InputError,
    MissingValueError,
    NotFittedModelError,
    UnsupportedModelError,
)


@pytest.fixture(scope="module")
def data():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y, Ridge().fit(X, y)


def test_wrong_column_count(data):
    X, _, model = data
    with pytest.raises(ColumnMismatchError, match="has 9 columns but the model was fitted on 10"):
        shapgov.explain(model, X.iloc[:, :9])
    with pytest.raises(ValueError):  # a ValueError, as scikit-learn users expect
        shapgov.explain(model, X.to_numpy()[:, :9])


def test_wrong_column_names(data):
    X, _, model = data
    renamed = X.rename(columns={"bmi": "BMI"})
    with pytest.raises(ColumnMismatchError, match=r"missing \['bmi'\], unexpected \['BMI'\]"):
        shapgov.explain(model, renamed)
    with pytest.raises(ColumnMismatchError, match="another order"):
        shapgov.explain(model, X[X.columns[::-1]])


def test_background_with_other_columns(data):
    X, _, model = data
    with pytest.raises(ColumnMismatchError):
        shapgov.explain(model, X, background=X.iloc[:, :9])


def test_nan_where_the_model_cannot_take_it(data):
    X, _, model = data
    bad = X.iloc[:10].copy()
    bad.loc[bad.index[3], "bp"] = np.nan
    with pytest.raises(MissingValueError, match=r"column\(s\) \['bp'\].*SimpleImputer"):
        shapgov.explain(model, bad)


def test_nan_is_fine_behind_an_imputer(data):
    X, y, _ = data
    model = make_pipeline(SimpleImputer(), Ridge()).fit(X, y)
    bad = X.iloc[:10].copy()
    bad.loc[bad.index[3], "bp"] = np.nan
    bg = X.iloc[::40]
    e = shapgov.explain(model, bad, background=bg)
    ref, _ = brute_force_shapley(model.predict, bad, bg)
    assert np.max(np.abs(e.values - ref[:, :, 0])) <= 1e-10


def test_unfitted_model(data):
    X, _, _ = data
    with pytest.raises(NotFittedModelError, match="not fitted; call fit"):
        shapgov.explain(Ridge(), X)
    with pytest.raises(NotFittedModelError, match=r"Pipeline at .pipeline. is not fitted"):
        shapgov.explain(make_pipeline(preprocess(), Ridge()), X)


def test_unknown_model_without_fallback(data):
    X, y, _ = data
    with pytest.raises(UnsupportedModelError, match="no row in the compatibility matrix"):
        shapgov.explain(KNeighborsRegressor().fit(X, y), X, fallback=None)


def test_undecomposable_model_without_fallback(data):
    X, _, model = data

    class Doubled:
        def predict(self, X):
            return 2 * model.predict(X)

    with pytest.raises(UnsupportedModelError, match="opaque=True"):
        shapgov.explain(Doubled(), X, fallback=None)


def test_hard_voting_is_refused(data):
    X, y, _ = data
    clf = VotingClassifier(
        [("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))], voting="hard"
    ).fit(X, y > 140)
    with pytest.raises(UnsupportedModelError, match="voting='soft'"):
        shapgov.explain(clf, X)


def test_not_two_dimensional_and_empty(data):
    X, _, model = data
    with pytest.raises(InputError, match="2-D"):
        shapgov.explain(model, X.to_numpy()[0])
    with pytest.raises(InputError, match="no rows"):
        shapgov.explain(model, X.iloc[:0])


def test_offset_of_wrong_length(data):
    X, _, model = data
    with pytest.raises(InputError, match="one value per row"):
        shapgov.explain(model, X, offset=np.zeros(3))
