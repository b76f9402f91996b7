"""What every ``shapgov`` command shares: the default store, exit codes, and turning
tracking failures into typed problems."""

from __future__ import annotations

import os

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
