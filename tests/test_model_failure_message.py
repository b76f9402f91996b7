"""A model that fails inside an explanation: the ModelOutputError keeps the failure's
cause (MLflow's "column age: can not safely convert int64 to int32"), never the rows
some libraries print into their messages."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import shapgov
from shapgov.errors import ModelOutputError
from shapgov.opaque import CAUSE_CHARS, failure_cause


def _int32_pyfunc():
    """A scikit-learn model logged to a real MLflow store with a signature that wants
    ``age`` as int32, loaded back as a pyfunc model."""
    from mlflow.models import infer_signature

    rng = np.random.default_rng(7)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 80).astype(np.int32),
            "income": rng.normal(50.0, 10.0, 80),
        }
    )
    model = LinearRegression().fit(X, 0.3 * X["age"] + 0.1 * X["income"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(  # requirements declared: inference costs ~5 s
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            pip_requirements=["scikit-learn"],
        )
    return mlflow.pyfunc.load_model(info.model_uri), X


def test_a_pyfunc_predict_on_int64_data_says_which_column_and_never_the_rows(store):
    loaded, X = _int32_pyfunc()
    rows = X[:6].astype({"age": "int64"})
    rows.loc[rows.index[0], "age"] = 2**40  # no int32 holds it
    bg = X[40:60].astype({"age": "int64"})
    with pytest.raises(mlflow.exceptions.MlflowException) as direct:
        loaded.predict(rows)  # MLflow's own message: the rows, then the cause
    assert len(str(direct.value).splitlines()) > 3 and str(2**40) in str(direct.value)

    with pytest.raises(ModelOutputError) as caught:
        shapgov.explain(loaded.predict, rows, background=bg)
    message = str(caught.value)
    assert "column age" in message and "int64 to int32" in message
    assert "\n" not in message and len(message) < 600
    assert str(2**40) not in message  # never a row
    for value in pd.concat([rows, bg])["income"]:
        assert f"{value:.6f}" not in message and f"{value:.4f}" not in message
    assert isinstance(caught.value.__cause__, mlflow.exceptions.MlflowException)

    # the loaded model itself (a black box) is cast to its signature first: the lossy
    # value is refused by name before the model is called
    with pytest.raises(shapgov.errors.InputError, match="'age'"):
        shapgov.explain(loaded, rows, background=bg)


def _raised(fn):
    try:
        fn()
    except Exception as err:
        return err
    raise AssertionError("no exception")


def test_a_one_line_message_is_the_cause():
    err = _raised(lambda: int("x"))
    assert failure_cause(err) == "ValueError: invalid literal for int() with base 10: 'x'"


def test_a_multi_line_message_takes_its_cause_from_the_exception_it_was_raised_from():
    def model():
        try:
            raise TypeError("column b: expected float64, got object")
        except TypeError as inner:
            raise RuntimeError("failed on data\n   a   b\n0  1  x\n1  2  y") from inner

    assert failure_cause(_raised(model)) == "TypeError: column b: expected float64, got object"


def test_a_handled_exception_is_the_cause_unless_it_was_suppressed():
    def handled():
        try:
            raise KeyError("no column 'c'")
        except KeyError:
            raise ValueError("bad rows\n0  1  2\n1  3  4\nError: column c is missing") from None

    def last_line():
        try:
            raise KeyError("no column 'c'")
        except KeyError:
            raise ValueError("bad rows\n0  1  2\n1  3  4\ncolumn c is missing") from None

    assert failure_cause(_raised(handled)) == "ValueError: column c is missing"
    assert failure_cause(_raised(last_line)) == "ValueError: column c is missing"


def test_the_cause_is_bounded_and_an_empty_message_gives_the_type():
    assert failure_cause(ValueError("x" * 5000)) == "ValueError: " + "x" * CAUSE_CHARS
    assert failure_cause(RuntimeError()) == "RuntimeError"
