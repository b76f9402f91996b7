"""Helpers of ``shapgov explain`` (:mod:`shapgov.cli`): where the set goes, the time
windows asked for, the categories a CSV's text labels take, and what was sampled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

#: ``--model-uri``, as every command that reads a logged model takes it.
model_uri_option = click.option(
    "--model-uri",
    required=True,
    help="MLflow model URI: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN/PATH, ...",
)


def target_run(model_uri: str) -> str | None:
    """The run a new set for ``model_uri`` goes to: the run that logged the model, if it
    holds no shapgov set yet (so registry approval, which reads the source run, finds
    it); None (a new run) when there is no such run or it already holds a set, which is
    never overwritten: it may be the evidence behind an approval."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from shapgov.mlflow import ARTIFACT_PATH

    run_id = mlflow.models.get_model_info(model_uri).run_id
    if not run_id:
        return None
    names = {
        f.path.rsplit("/", 1)[-1] for f in MlflowClient().list_artifacts(run_id, ARTIFACT_PATH)
    }
    return None if "manifest.json" in names else run_id


def windowing(
    data: Any,
    data_path: Path,
    time_column: str | None,
    freq: str | None,
    windows: str | None,
    players_json: str | None,
) -> dict[str, Any] | None:
    """The over_time options of ``shapgov explain``, checked (exit 2 on a bad one)."""
    import json

    if time_column is None:
        if freq or windows or players_json:
            raise click.BadParameter("needs --time-column", param_hint="--freq/--windows/--players")
        return None
    if time_column not in data.columns:
        raise click.BadParameter(
            f"{data_path} has no column {time_column!r}", param_hint="--time-column"
        )
    if (freq is None) == (windows is None):
        raise click.BadParameter("give one of --freq and --windows", param_hint="--freq")
    from shapgov.analyses.windows import period_freq
    from shapgov.errors import InputError
    from shapgov.planning.players import Players

    options: dict[str, Any] = {"time": time_column}
    if freq is not None:  # checked before any run is created
        try:
            period_freq(freq)
        except InputError as err:
            raise click.BadParameter(str(err), param_hint="--freq") from err
        options["freq"] = freq
    else:
        options["windows"] = [w.strip() for w in windows.split(",") if w.strip()]
    if players_json is not None:
        try:
            options["players"] = json.loads(players_json)
            Players.resolve([c for c in data.columns if c != time_column], options["players"])
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--players") from err
    return options


def stored_categories(model: Any, *tables: Any) -> tuple[Any, ...]:
    """The tables with the model's category columns recoded to the categories it stored
    (a CSV holds labels as text; ``shapgov_stored_categories``)."""
    from shapgov.decomposition.encoding import as_stored_categories
    from shapgov.registry import PluginCalls, resolve_plugin_manager

    plugins = PluginCalls(resolve_plugin_manager(None))
    stored = plugins.first("shapgov_stored_categories", model=model, plugins=plugins)
    return tables if not stored else tuple(as_stored_categories(t, stored) for t in tables)


#: Background rows sampled from --data when no --background is given.
DEFAULT_BACKGROUND = 200


def sampled(what: str, taken: Any, table: Any, path: Path, seed: int, option: str) -> str:
    """One line that says which rows were used: all of them, or a seeded sample."""
    if len(taken) == len(table):
        return f"{what} all {len(table)} rows of {path}"
    return (
        f"{what} {len(taken)} of {len(table)} rows of {path}, a seeded random sample (seed "
        f"{seed}; {option} to choose)"
    )
