"""What every ``shapgov`` command shares: the default store, exit codes, and turning
tracking failures into typed problems."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

DEFAULT_STORE = "sqlite:///mlflow.db"
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_RETRY = 75  # sysexits' EX_TEMPFAIL: a temporary failure, try again


class InputProblem(click.ClickException):
    """Bad input found past click's own parsing (a missing run, a file that is not a
    table): reported like a usage error, exit code 2."""

    exit_code = EXIT_USAGE


def _use_store(tracking_uri: str | None) -> str:
    """Point MLflow at ``tracking_uri`` (default: the embedded sqlite store here)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    uri = tracking_uri or DEFAULT_STORE
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _tracking_problem(err: Exception, action: str) -> Exception:
    """A typed error for an unreachable server or a refused request (their own exit
    codes, see main), else a usage problem with MLflow's message."""
    from shapgov.mlflow.failures import typed

    problem = typed(err, action, retry="run the command again", writing=False)
    return problem or InputProblem(f"{action}: {getattr(err, 'message', err)}")


def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as err:  # a parser's own error, reported with the file name
        raise InputProblem(f"{path} could not be read as {suffix[1:]}: {err}") from err
    raise click.BadParameter(f"{path} is neither .csv nor .parquet", param_hint="--data")
