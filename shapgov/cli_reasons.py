"""``shapgov reasons``: adverse-action reasons for new rows from the command line.

Two uses. Without ``--catalogue`` the reasons are derived exactly as the model's approved
artifact set derived its own (its catalogue, decision rule, reference population,
``max_reasons`` and ``min_share``: :func:`shapgov.adverse_action.stored.reasons_like_the_set`),
from the set of the run that logged the model, every file checked against its manifest.
With ``--catalogue``, ``--cutoff`` and ``--reference`` they are derived afresh
(:func:`shapgov.reasons`). Exit codes as every command's (:mod:`shapgov.cli`): 0 done, 1
the additivity policy withheld declined rows' values, 2 bad usage or input (a bad
catalogue, a protected attribute, an unknown row key), 75 the tracking server did not
answer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from shapgov.cli_explain import model_uri_option

#: Codes listed in the printed summary, most given first.
SHOWN_CODES = 5


class BadInput(click.ClickException):
    """Bad input found past click's own parsing: exit code 2, with what to fix."""

    exit_code = 2


def _table(path: Path, what: str) -> Any:
    """A .csv or .parquet file as a DataFrame (exit 2 naming the file otherwise)."""
    import pandas as pd

    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise click.BadParameter(f"{path} is neither .csv nor .parquet", param_hint=what)
    try:
        return reader(path)
    except Exception as err:  # the parser's own message, with the file's name
        raise BadInput(f"{path} could not be read as {path.suffix[1:]}: {err}") from err


def _keyed(table: Any, key_column: str | None, path: Path, *, required: bool) -> Any:
    """``table`` indexed by ``key_column`` (the rows' keys; dropped from a reference table
    that has it, required in --data)."""
    if key_column is None or (key_column not in table.columns and not required):
        return table
    if key_column not in table.columns:
        raise click.BadParameter(f"{path} has no column {key_column!r}", param_hint="--key")
    keyed = table.set_index(key_column)
    return keyed if required else keyed.reset_index(drop=True)


def _model(model_uri: str, tables: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The model's own flavor behind ``model_uri`` and the tables conformed to its
    signature and stored categories (as ``shapgov explain`` reads them)."""
    import mlflow

    from shapgov.cli_explain import stored_categories
    from shapgov.mlflow.evaluator import native_model
    from shapgov.mlflow.signature import conform_to_schema, input_schema

    loaded = mlflow.pyfunc.load_model(model_uri)
    schema = input_schema(loaded)
    for what, table in tables.items():
        extra = [] if schema is None else sorted(set(table.columns) - set(schema.input_names()))
        if extra:
            raise BadInput(
                f"{what} has column(s) {extra} that {model_uri} does not take: drop them, or "
                "name the column of row keys with --key"
            )
    conformed = [
        t if schema is None else conform_to_schema(t, schema, what=what)
        for what, t in tables.items()
    ]
    model = native_model(loaded)
    return model, list(stored_categories(model, *conformed))


def _verdict(model_uri: str) -> str:
    """The registered version's approval tag, as a phrase ('' for a run's model)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/"):
        return ""
    name, _, rest = model_uri[len("models:/") :].partition("/")
    client = MlflowClient()
    try:
        if "@" in name:
            name, alias = name.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            mv = client.get_model_version(name, rest.strip("/"))
    except MlflowException:  # a URI the registry resolves otherwise (a stage): no verdict
        return ""
    return f", shapgov.approval: {mv.tags.get('shapgov.approval', 'not yet judged')}"


def _stored_set(model_uri: str) -> tuple[dict[str, Any], str]:
    """The reasons the artifact set of ``model_uri``'s run holds (every file of the set
    checked against its manifest), and a phrase naming the set."""
    import tempfile

    import mlflow
    from mlflow.tracking import MlflowClient

    from shapgov.adverse_action.stored import read_reasons
    from shapgov.mlflow.failures import typed
    from shapgov.sinks.artifact_set import ArtifactSet

    run_id = mlflow.models.get_model_info(model_uri).run_id
    if not run_id:
        raise BadInput(f"{model_uri} was not logged by a run: it has no artifact set")
    with tempfile.TemporaryDirectory(prefix="shapgov-reasons-") as tmp:
        try:
            local = Path(MlflowClient().download_artifacts(run_id, "shapgov", tmp))
        except Exception as err:
            action = f"reading the artifact set of run {run_id}"
            problem = typed(err, action, retry="run the command again", writing=False)
            raise problem or BadInput(
                f"run {run_id} holds no shapgov artifact set: explain and log {model_uri} "
                "first, or derive fresh reasons with --catalogue, --cutoff and --reference"
            ) from err
        ArtifactSet.read(local)  # every listed file against its hash (InputError otherwise)
        stored = read_reasons(local)
    if not stored:
        raise BadInput(
            f"the artifact set of run {run_id} holds no adverse-action reasons: log them "
            "with explain_and_log(..., reasons={...}), or derive fresh ones with "
            "--catalogue FILE.toml --cutoff X --reference ROWS.csv"
        )
    source = f"as the artifact set of run {run_id} derived them ({model_uri}{_verdict(model_uri)})"
    kept = stored["summary"].get("stability") or {}
    if kept.get("mean_share_kept") is not None:
        source += (
            f"\nthe set's own declined rows kept a mean share {kept['mean_share_kept']:.3f} of "
            f"their reasons over {kept['resamples']} resamples of its reference population"
        )
    return stored, source


def _summary(result: Any, data_path: Path, source: str) -> list[str]:
    """What the command prints: counts, the catalogue and reference, codes most given,
    stability."""
    summary = result.summary()
    status = summary["status"]
    counts = ", ".join(
        f"{status[k]} {label}"
        for k, label in (
            ("reasons", "with reasons"),
            ("no adverse input", "with no input pushing toward decline"),
            ("needs review", "needing a reviewer to state the reasons"),
            ("withheld", "withheld by the additivity policy"),
        )
        if k in status
    )
    reference = summary["reference"]
    catalogue = summary["catalogue"]
    lines = [
        f"reasons for {len(result)} rows of {data_path}: {summary['declined']} declined "
        f"({summary['decision']['rule']})" + (f"; {counts}" if counts else ""),
        f"catalogue {catalogue['name']} {catalogue['version']} (sha256 "
        f"{catalogue['sha256'][:12]}...); reference population {reference['population']!r}: "
        f"{reference['rows']} of {reference['candidates']} rows; {source}",
    ]
    given = result.frequencies()
    given = given[given["any"] > 0].head(SHOWN_CODES)
    if len(given):
        with_reasons = status.get("reasons", 0)
        lines.append(f"codes most given (of {with_reasons} declined rows with reasons):")
        lines += [
            f"  {row.code}  {row.any:>6} rows ({row.share_any:.0%}), first for {row.first}: "
            f"{row.statement}"
            for row in given.itertuples()
        ]
    kept = result.stability
    if kept and kept.get("mean_share_kept") is not None:
        lines.append(
            f"stability over {kept['resamples']} resamples of the reference population: "
            f"mean share of a row's reasons kept {kept['mean_share_kept']:.3f} (minimum "
            f"{kept['min_share_kept']:.3f}); first reason unchanged "
            f"{kept['first_reason_kept']:.0%}"
        )
    return lines


def _row_key(index: Any, key: str) -> Any:
    """The row key of ``index`` that reads ``key`` (keys are text on a command line)."""
    for candidate in index:
        if str(candidate) == key:
            return candidate
    raise click.BadParameter(
        f"no row {key!r} in --data (rows are named by --key COLUMN, else numbered from 0)",
        param_hint="--notice",
    )


def _notice(result: Any, key: Any) -> str:
    from shapgov.errors import InputError

    try:
        return result.notice(key)
    except InputError as err:  # an approved row has no reasons
        raise click.BadParameter(str(err), param_hint="--notice") from err


def _write(result: Any, out: Path, key_column: str | None) -> None:
    frame = result.to_frame()
    frame.index.name = key_column or "row"
    frame = frame.reset_index()
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)


@click.command()
@model_uri_option
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Applicants: a .csv or .parquet file with the model's input columns.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one row per applicant (score, decision, status, reason_1..k, statement_1..k, "
    "value_1..k, game_sha256) to this .csv or .parquet file.",
)
@click.option("--notice", "notice_key", default=None, help="Print the notice of this row key.")
@click.option(
    "--key",
    "key_column",
    default=None,
    help="Column of --data naming each row (an applicant ID): the rows' keys, not an input.",
)
@click.option(
    "--catalogue",
    "catalogue_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Derive fresh reasons with this catalogue (.toml/.csv; needs --cutoff and "
    "--reference). Without it: as the model's artifact set derived its reasons.",
)
@click.option(
    "--catalogue-version",
    default=None,
    help="The version of a .csv catalogue without a catalogue_version column.",
)
@click.option(
    "--catalogue-name",
    default=None,
    help="The name of a .csv catalogue without a catalogue_name column (default: its stem).",
)
@click.option("--cutoff", type=float, default=None, help="The score at which applicants decline.")
@click.option(
    "--declines",
    type=click.Choice(["above", "below"]),
    default=None,
    help="'above' (default): a score >= the cutoff declines; 'below': a score < it does.",
)
@click.option(
    "--score",
    type=click.Choice(["probability", "prediction", "margin"]),
    default=None,
    help="What the cutoff applies to (default: probability of the last class).",
)
@click.option(
    "--positive-class",
    default=None,
    help="The class whose probability the cutoff applies to (default: 1 or True; needed "
    "for other labels, e.g. 'bad').",
)
@click.option(
    "--reference",
    "reference_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rows (.csv/.parquet) the reference population is chosen from.",
)
@click.option(
    "--population",
    type=click.Choice(["approved", "all", "near_cutoff"]),
    default=None,
    help="Reference rows kept: 'approved' (default), 'all', or 'near_cutoff'.",
)
@click.option(
    "--protected",
    multiple=True,
    help="A protected attribute (repeat): neither the model nor the catalogue may use it.",
)
@click.option(
    "--max-reasons",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many reasons per declined row (default 4).",
)
@click.option(
    "--stability",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Bootstrap resamples of the reference population to measure the reasons' "
    "stability against (with --catalogue; each costs one grouped explanation).",
)
@click.option("--random-state", default=0, show_default=True, help="Seed of the resamples.")
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
)
def reasons(
    model_uri: str,
    data_path: Path,
    out: Path | None,
    notice_key: str | None,
    key_column: str | None,
    catalogue_path: Path | None,
    catalogue_version: str | None,
    catalogue_name: str | None,
    cutoff: float | None,
    declines: str | None,
    score: str | None,
    positive_class: str | None,
    reference_path: Path | None,
    population: str | None,
    protected: tuple[str, ...],
    max_reasons: int | None,
    stability: int,
    random_state: int,
    tracking_uri: str | None,
) -> None:
    """Adverse-action reasons for the declined rows of --data: as the model's approved
    artifact set derived its own (its catalogue, decision rule and reference population),
    or afresh with --catalogue, --cutoff and --reference. Exits 1 when the additivity
    policy withholds declined rows' values."""
    import os

    import mlflow
    from mlflow.exceptions import MlflowException

    from shapgov.errors import ShapgovError, TrackingPermissionError, TrackingUnavailableError
    from shapgov.mlflow.failures import tracking_errors

    if out is not None and out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise click.BadParameter(f"{out} is neither .csv nor .parquet", param_hint="--out")
    fresh = {"--cutoff": cutoff, "--declines": declines, "--score": score}
    fresh |= {"--positive-class": positive_class}
    fresh |= {"--catalogue-name": catalogue_name, "--catalogue-version": catalogue_version}
    fresh |= {"--reference": reference_path, "--population": population}
    fresh |= {"--max-reasons": max_reasons, "--stability": stability or None}
    if catalogue_path is None and any(v is not None for v in fresh.values()):
        given = [k for k, v in fresh.items() if v is not None]
        raise click.UsageError(
            f"{', '.join(given)} {'derives' if len(given) == 1 else 'derive'} fresh reasons: "
            "give --catalogue FILE.toml too "
            "(without it the model's artifact set decides the catalogue, rule and reference)"
        )
    if catalogue_path is not None and (cutoff is None or reference_path is None):
        raise click.UsageError("--catalogue derives fresh reasons: give --cutoff and --reference")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    data = _keyed(_table(data_path, "--data"), key_column, data_path, required=True)
    row = None if notice_key is None else _row_key(data.index, notice_key)
    tables = {str(data_path): data}
    if reference_path is not None:
        reference = _table(reference_path, "--reference")
        tables["the reference"] = _keyed(reference, key_column, reference_path, required=False)
    action = f"giving reasons with {model_uri}"
    try:
        with tracking_errors(action, retry="run the command again", writing=False):
            model, conformed = _model(model_uri, tables)
            if catalogue_path is None:
                result, source = _like_the_set(model, conformed[0], model_uri, protected)
            else:
                result = _fresh(
                    model, conformed[0], conformed[1], catalogue_path, cutoff,
                    declines=declines or "above", score=score or "probability",
                    positive_class=positive_class, catalogue_name=catalogue_name,
                    catalogue_version=catalogue_version,
                    population=population or "approved", protected=protected,
                    max_reasons=max_reasons or 4, stability=stability,
                    random_state=random_state,
                )  # fmt: skip
                source = f"derived afresh from {catalogue_path}"
    except (TrackingPermissionError, TrackingUnavailableError):
        raise  # their own exit codes (see shapgov.cli.main)
    except ShapgovError as err:  # CatalogueError, ProtectedAttributeError, InputError, ...
        raise BadInput(str(err)) from err
    except MlflowException as err:  # no such model or version, ...
        raise BadInput(f"{action}: {getattr(err, 'message', err)}") from err
    for line in _summary(result, data_path, source):
        click.echo(line)
    if row is not None:
        click.echo(_notice(result, row))
    if out is not None:
        _write(result, out, key_column)
        click.echo(f"reasons of every row written to {out}")
    withheld = int((result.status == "withheld").sum())
    if withheld:
        click.echo(
            f"additivity failed: the values of {withheld} declined rows were withheld, and no "
            "reasons can be stated for them",
            err=True,
        )
        sys.exit(1)


def _like_the_set(
    model: Any, data: Any, model_uri: str, protected: tuple[str, ...]
) -> tuple[Any, str]:
    from shapgov.adverse_action.stored import reasons_like_the_set

    stored, source = _stored_set(model_uri)
    stored["catalogue"].check_inputs(list(data.columns), protected=protected)
    return reasons_like_the_set(model, data, stored), source


def _fresh(
    model: Any, data: Any, reference: Any, catalogue_path: Path, cutoff: float, **options: Any
) -> Any:
    from shapgov.adverse_action.catalogue import load_catalogue
    from shapgov.adverse_action.decision import Decision
    from shapgov.adverse_action.derive import reasons as derive

    named = {"name": options.pop("catalogue_name"), "version": options.pop("catalogue_version")}
    csv = catalogue_path.suffix.lower() == ".csv"
    catalogue = load_catalogue(catalogue_path, **(named if csv else {}))
    if not csv and any(named.values()):
        raise click.UsageError(
            "--catalogue-name and --catalogue-version are for a .csv catalogue; a .toml one "
            "names itself in its [catalogue] table"
        )
    positive = options.pop("positive_class")
    for label in getattr(model, "classes_", ()):  # labels are text on a command line
        if positive is not None and str(label) == positive:
            positive = label
    decision = Decision(
        cutoff=cutoff,
        declines=options.pop("declines"),
        score=options.pop("score"),
        positive_class=positive,
    )
    return derive(
        model, data, catalogue=catalogue, decision=decision, reference=reference, **options
    )
