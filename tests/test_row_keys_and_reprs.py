"""Issue 30, items 3, 5 and 9: the caller's row keys survive every view and file, column
errors name the columns, and public objects print in a line or two."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from credit import credit_table

import shapgov
from shapgov.errors import ColumnMismatchError


@pytest.fixture(scope="module")
def credit():
    X, y = credit_table(2000)
    model = lgb.LGBMClassifier(n_estimators=40, verbose=-1, random_state=0).fit(X, y)
    return X, y, model


@pytest.fixture(scope="module")
def explained(credit):
    X, _, model = credit
    return shapgov.explain(model, X.iloc[:60], background=X.iloc[500:700])


def test_row_keys_are_kept_in_frames_and_prediction_explanations(credit, explained):
    X = credit[0]
    keys = list(X.index[:60])
    assert keys != list(range(60))  # applicant IDs, not positions
    assert list(explained.to_frame().index) == keys
    assert explained.to_frame().index.name == "applicant_id"
    pe = shapgov.prediction_explanations(explained, k=2)
    assert list(dict.fromkeys(pe["row"])) == keys
    # each key's values are that applicant's: the same as explaining the row alone
    one = shapgov.explain(credit[2], X.loc[[keys[7]]], background=X.iloc[500:700])
    assert list(one.to_frame().index) == [keys[7]]
    np.testing.assert_allclose(one.values[0], explained.values[7], atol=1e-12)
    sliced = explained[5:8]
    assert list(sliced.to_frame().index) == keys[5:8]


def test_parquet_keeps_row_keys_and_names_columns_readably(tmp_path, credit, explained):
    path = explained.to_parquet(tmp_path / "values.parquet")
    names = pq.read_table(path).column_names
    assert names[0] == "row_key"
    assert "shap::income" in names and "data::purpose" in names and "prediction" in names
    assert not any(n.startswith("shap::0") for n in names)
    back = shapgov.Explanation.read_parquet(path)
    assert list(back.data.index) == list(credit[0].index[:60])
    assert back.data.index.name == "applicant_id"
    np.testing.assert_array_equal(back.values, explained.values)
    np.testing.assert_array_equal(back.prediction, explained.prediction)
    pd.testing.assert_frame_equal(back.data, explained.data)


def test_an_array_or_repeated_keys_keep_positions(credit):
    X, _, model = credit
    rows = X.iloc[:4]
    twice = pd.concat([rows.iloc[:2], rows.iloc[:2]])  # repeated labels name no row each
    with pytest.warns(UserWarning, match="repeated labels"):
        e = shapgov.explain(model, twice, background=X.iloc[500:600])
    assert list(e.to_frame().index) == [0, 1, 2, 3]
    nested = rows.set_index(pd.MultiIndex.from_arrays([[2024] * 4, rows.index]))
    with pytest.warns(UserWarning, match="MultiIndex"):
        e = shapgov.explain(model, nested, background=X.iloc[500:600])
    assert list(e.to_frame().index) == [0, 1, 2, 3]


def test_column_errors_name_the_missing_and_unexpected_columns(credit):
    X, _, model = credit
    with pytest.raises(ColumnMismatchError, match=r"missing \['purpose'\]"):
        shapgov.explain(model, X.iloc[:5].drop(columns=["purpose"]), background=X.iloc[:50])
    with pytest.raises(ColumnMismatchError, match=r"unexpected \['applicant_name'\]") as err:
        shapgov.explain(model, X.iloc[:5].assign(applicant_name="A. Smith"), background=X)
    assert "missing" not in str(err.value)


def test_public_objects_print_briefly(credit):
    X, _, model = credit
    e = shapgov.explain(model, X.iloc[:1000], background=X.iloc[:100])
    for text in (repr(e.additivity), str(e.additivity), repr(e.vertices), repr(e)):
        assert len(text) < 400, text
    assert "array(" not in repr(e.vertices) and "values=<1000x8x1>" in repr(e.vertices)
    assert {"explain", "feature_impact", "Explanation"} <= set(dir(shapgov))
