"""Adverse-action reasons in the artifact set (issue 32): every file hashed in the
manifest, the stored reasons equal to the in-process ones, and nothing logged when the
catalogue is bad or a protected attribute is involved."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import Ridge
from test_reasons import REASONS, applicants, catalogue, scorecard

import shapgov
import shapgov.mlflow
from shapgov.adverse_action.stored import (
    FILES,
    STABILITY_FILE,
    read_reasons,
    reasons_like_the_set,
)
from shapgov.errors import (
    AdditivityWarning,
    CatalogueError,
    InputError,
    ProtectedAttributeError,
)
from shapgov.mlflow.artifacts import sha256_file


@pytest.fixture(scope="module")
def scored():
    X, y = applicants(2500, seed=11)
    model, _ = scorecard("scorecard", X, y)
    return model, X


def _set(run_id: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/shapgov"))


def test_the_set_holds_the_reasons_hashed_and_equal_to_the_in_process_ones(store, scored):
    model, X = scored
    rows, reference = X.iloc[:300], X.iloc[1000:1400]
    spec = dict(
        catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=reference,
        stability=4,
    )  # fmt: skip
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, rows, background=reference, analyses=False, reasons=spec
        )
    folder = _set(run.info.run_id)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in (*FILES, STABILITY_FILE):
        assert manifest["artifacts"][name] == sha256_file(folder / name), name
    stored = read_reasons(folder)
    expected = shapgov.reasons(model, rows, **spec, random_state=0)
    frame = expected.to_frame()
    got = stored["frame"].set_index("row")
    got.index.name = frame.index.name
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert stored["catalogue"].sha256 == catalogue().sha256
    assert stored["summary"]["game_sha256"] == expected.game_sha256
    assert stored["summary"]["stability"]["resamples"] == 4
    assert "per_row" not in stored["summary"]["stability"]
    ref = expected.reference_rows.reset_index(drop=True)
    pd.testing.assert_frame_equal(stored["reference"], ref)
    np.testing.assert_array_equal(
        stored["values"].drop(columns="row").to_numpy(), expected.group_values
    )
    # new rows explained as the set's were (serving, Spark and the CLI do this)
    again = reasons_like_the_set(model, rows, stored).to_frame()
    pd.testing.assert_frame_equal(
        again.drop(columns="game_sha256"), frame.drop(columns="game_sha256")
    )
    assert (again["game_sha256"] == expected.game_sha256).all()
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert metrics["shapgov.reasons.declined"] == expected.declined.sum()
    assert metrics["shapgov.reasons.stability"] == expected.stability["mean_share_kept"]


@pytest.mark.parametrize(
    "problem",
    ["protected input", "protected in catalogue", "uncovered input", "unknown input"],
)
def test_a_refused_catalogue_logs_nothing(store, scored, problem):
    model, X = scored
    rows, reference = X.iloc[:100], X.iloc[1000:1200]
    cat, protected, error = catalogue(), (), CatalogueError
    if problem == "protected input":
        protected, error = ("housing",), ProtectedAttributeError
    elif problem == "protected in catalogue":
        cat = catalogue([*REASONS, ("R08", "Age", ["age"], "either")])
        protected, error = ("age",), ProtectedAttributeError
    elif problem == "uncovered input":
        cat = catalogue(REASONS[:6])
    else:
        cat = catalogue([*REASONS, ("R08", "Bureau score", ["bureau_score"], "low")])
    spec = dict(
        catalogue=cat, decision=shapgov.Decision(cutoff=0.3), reference=reference,
        protected=protected,
    )  # fmt: skip
    with mlflow.start_run() as run, pytest.raises(error):
        shapgov.mlflow.explain_and_log(model, rows, background=reference, reasons=spec)
    assert MlflowClient().list_artifacts(run.info.run_id) == []
    assert "shapgov.status" not in MlflowClient().get_run(run.info.run_id).data.tags


def test_a_set_whose_declined_rows_got_no_reasons_is_not_approved(store, test_plugin):
    """The reasons' game is judged like the values: here the explanation passes with a
    warning (a generous threshold, allowed), but the reasons' game keeps the default 1%
    threshold and withholds every declined row's reasons; nobody may approve a set whose
    declined applicants would get no statement of reasons."""
    from shapgov.mlflow.approval import check_run

    X, y = applicants(600, seed=8)
    numeric = X[[c for c in X.columns if c != "housing"]]
    ridge = Ridge().fit(numeric, y.astype(float))
    upper = float(np.quantile(ridge.predict(numeric), 0.7))
    clipped = test_plugin.ClippedRegressor(Ridge(), upper=upper).fit(numeric, y.astype(float))
    spec = dict(
        catalogue=catalogue(REASONS[:6]), population="all", stability=0,
        decision=shapgov.Decision(cutoff=upper - 0.05, score="prediction"),
        reference=numeric.iloc[300:400], additivity_threshold=0.01,
    )  # fmt: skip
    with mlflow.start_run() as run, pytest.warns(AdditivityWarning):
        shapgov.mlflow.explain_and_log(
            clipped, numeric.iloc[:200], background=numeric.iloc[300:400], analyses=False,
            additivity_threshold=1e9, reasons=spec,
        )  # fmt: skip
    summary = json.loads((_set(run.info.run_id) / "reasons.json").read_text())
    declined = summary["declined"]
    assert declined and summary["status"]["withheld"] == declined
    verdict = check_run(run.info.run_id, allow_warn=True)
    assert not verdict.approved
    assert verdict.reasons == [
        f"the additivity policy withheld the adverse-action reasons of {declined} of the "
        f"{declined} declined rows (reasons.json): their applicants would get no statement "
        "of reasons; find why the reasons' game does not add up (its additivity report) "
        "before approving"
    ]


def test_a_misspelt_reasons_option_logs_nothing(store, scored):
    model, X = scored
    spec = dict(
        catalogue=catalogue(), decision=shapgov.Decision(cutoff=0.3), reference=X.iloc[1000:1200],
        stabilty=5,
    )  # fmt: skip
    with (
        mlflow.start_run() as run,
        pytest.raises(InputError, match=r"does not take: \['stabilty'\]"),
    ):
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:50], background=X.iloc[1000:1200], reasons=spec
        )
    assert MlflowClient().list_artifacts(run.info.run_id) == []
    with (
        mlflow.start_run() as run,
        pytest.raises(InputError, match=r"reasons= needs \['reference'\]"),
    ):
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:50], background=X.iloc[1000:1200],
            reasons={"catalogue": catalogue(), "decision": shapgov.Decision(cutoff=0.3)},
        )  # fmt: skip
    assert MlflowClient().list_artifacts(run.info.run_id) == []
