"""The Explanation object: shapes, frames, slicing, parquet round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cases import CASES

import shapgov
from shapgov.errors import InputError


@pytest.fixture(scope="module")
def regression():
    case = CASES[("blender", "regression")]()
    return shapgov.explain(case.model, case.X, background=case.background)


@pytest.fixture(scope="module")
def multiclass():
    case = CASES[("stacked_boosted", "multiclass")]()
    return shapgov.explain(case.model, case.X, background=case.background)


def test_shapes(regression, multiclass):
    assert regression.values.shape == (5, 6) and regression.base_values.shape == (5,)
    assert multiclass.values.shape == (5, 4, 3) and multiclass.base_values.shape == (5, 3)
    assert multiclass.classes == [0, 1, 2]
    assert len(regression.vertices) == 3
    np.testing.assert_allclose(
        sum(p.values for p in regression.vertices)[:, :, 0], regression.values, atol=1e-12
    )


def test_to_frame(regression, multiclass):
    frame = regression.to_frame()
    assert list(frame.columns) == ["base_value", *regression.feature_names]
    np.testing.assert_array_equal(frame[regression.feature_names].to_numpy(), regression.values)
    long = multiclass.to_frame()
    assert len(long) == 15 and set(long["output"]) == {0, 1, 2}


def test_row_slicing(regression):
    part = regression[1:3]
    assert len(part) == 2
    np.testing.assert_array_equal(part.values, regression.values[1:3])
    assert part.data.equals(regression.data.iloc[1:3])  # rows keep their keys
    assert list(part.to_frame().index) == list(regression.data.index[1:3])
    np.testing.assert_array_equal(part.vertices[0].values, regression.vertices[0].values[1:3])
    assert len(regression[[0, 4]]) == 2 and len(regression[2]) == 1


@pytest.mark.parametrize("which", ["regression", "multiclass"])
def test_parquet_round_trip_preserves_everything(request, tmp_path, which):
    e = request.getfixturevalue(which)
    back = shapgov.Explanation.read_parquet(e.to_parquet(tmp_path / "e.parquet"))
    np.testing.assert_array_equal(back.values, e.values)
    np.testing.assert_array_equal(back.base_values, e.base_values)
    pd.testing.assert_frame_equal(back.data, e.data)
    assert back.feature_names == e.feature_names
    assert (back.link, back.output_space, back.task, back.classes) == (
        e.link,
        e.output_space,
        e.task,
        e.classes,
    )
    assert back.additivity == e.additivity
    assert back.composites == e.composites and back.model_class == e.model_class
    for a, b in zip(back.vertices, e.vertices, strict=True):
        assert a.meta() == b.meta()
        np.testing.assert_array_equal(a.values, b.values)


def test_reading_a_foreign_parquet_file_fails_clearly(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(InputError, match="not a shapgov explanation"):
        shapgov.Explanation.read_parquet(tmp_path / "x.parquet")
