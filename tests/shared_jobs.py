"""Jobs the shared-server tests run in processes of their own (spawned, so each is a
real client with its own MLflow state): writers that explain and log, approvers that
approve, and one-shot writers the tests kill or starve of their server.

Every job reports through a queue as ``(role, index, round, outcome, detail)`` and
never raises past its loop, so a failure in one job cannot hang the others at a barrier.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

USERS = {
    "writer": "writer-password-1234",
    "approver": "approver-password-1234",
    "editor": "editor-password-1234",
    "reader": "reader-password-1234",
}
KEY = "shapgov-tests-approval-key-0123456789"


def client_env(url: str, user: str, *, key: bool = False, **extra: str) -> dict[str, str]:
    """The environment of a client of the shared server acting as ``user``; with ``key``
    it holds the approval key (the approval service does; users do not)."""
    env = {
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_REGISTRY_URI": url,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": USERS[user],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "SHAPGOV_APPROVAL_KEY": KEY if key else "",
    }
    env.update(extra)
    return env


def blueprint(rows: int = 40) -> tuple[Any, Any, Any]:
    """A scaler + ridge pipeline on the diabetes data: ``(model, X, background)``; more
    rows than the data's 442 are drawn from it with replacement (a larger set)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X, y)
    rows_ = X.iloc[:rows] if rows <= len(X) else X.sample(rows, replace=True, random_state=0)
    return model, rows_, X.iloc[::20]


def _log(model: Any, X: Any, background: Any, run_id: str) -> None:
    import shapgov.mlflow

    shapgov.mlflow.explain_and_log(model, X, run_id=run_id, background=background, analyses=False)


def writer(index: int, env: dict[str, str], experiment_id: str, rounds: int, barrier, queue):
    """Each round: a new run, explain and log into it (between the round's barriers)."""
    os.environ.update(env)
    from mlflow.tracking import MlflowClient

    model, X, background = blueprint()
    for r in range(rounds):
        barrier.wait(timeout=600)
        try:
            run_id = MlflowClient().create_run(experiment_id, run_name=f"w{index}-r{r}").info.run_id
            _log(model, X, background, run_id)
            queue.put(("writer", index, r, "written", run_id))
        except Exception as err:
            queue.put(("writer", index, r, type(err).__name__, traceback.format_exc()))
        barrier.wait(timeout=600)


def approver(index: int, env: dict[str, str], name: str, rounds: int, barrier, versions, queue):
    """Each round: approve the version the test registered for it, with an alias."""
    os.environ.update(env)
    import shapgov

    for r in range(rounds):
        version = versions.get(timeout=600)
        barrier.wait(timeout=600)
        try:
            result = shapgov.approve(name, version, alias="champion")
            detail = f"{result.writes} {'; '.join(result.reasons)}"
            queue.put(("approver", index, r, result.verdict, detail))
        except Exception as err:
            queue.put(("approver", index, r, type(err).__name__, traceback.format_exc()))
        barrier.wait(timeout=600)


def one_set(env: dict[str, str], run_id: str, rows: int, queue) -> None:
    """Explain and log one set into ``run_id``; report how it ended (the error's type
    name and message when it failed)."""
    os.environ.update(env)
    model, X, background = blueprint(rows)
    try:
        _log(model, X, background, run_id)
        queue.put(("one_set", 0, 0, "written", run_id))
    except Exception as err:
        queue.put(("one_set", 0, 0, type(err).__name__, f"{run_id}\n{err}"))


if __name__ == "__main__":  # a writer a test kills: python shared_jobs.py RUN_ID ROWS
    from mlflow.tracking import MlflowClient  # noqa: F401  (import before the clock starts)

    model, X, background = blueprint(int(sys.argv[2]))
    print("ready", flush=True)
    _log(model, X, background, sys.argv[1])
    print("done", flush=True)
