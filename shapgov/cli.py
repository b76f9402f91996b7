"""The ``shapgov`` command line.

Exit codes: 0 done; 1 a governance check said no (additivity failed and the values were
withheld, approval rejected the version, a verdict did not verify, or the tracking server
refused the user); 2 bad usage or input (the message says what to fix); 75 the tracking
server did not answer (retry).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from shapgov._version import __version__
from shapgov.cli_approval import keys, reproduce
from shapgov.cli_common import (
    DEFAULT_STORE,
    EXIT_REFUSED,
    EXIT_RETRY,
    EXIT_USAGE,
    InputProblem,
    _read_table,
    _tracking_problem,
    _use_store,
)
from shapgov.cli_compare import compare
from shapgov.cli_document import document
from shapgov.cli_explain import (
    DEFAULT_BACKGROUND,
    model_uri_option,
    sampled,
    stored_categories,
    target_run,
    windowing,
)
from shapgov.cli_reasons import reasons
from shapgov.cli_review import finding, ledger, reject, review, roles, signoff
from shapgov.demo import CASE_NAMES

__all__ = ["DEFAULT_STORE", "EXIT_USAGE", "InputProblem", "main"]


def _tracking_option(fn: Any) -> Any:
    return click.option(
        "--tracking-uri",
        default=None,
        envvar="MLFLOW_TRACKING_URI",
        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else {DEFAULT_STORE}).",
    )(fn)


class _Commands(click.Group):
    """Errors every command can meet on a shared tracking server, each its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from shapgov.errors import TrackingPermissionError, TrackingUnavailableError

        try:
            return super().invoke(ctx)
        except TrackingPermissionError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(EXIT_REFUSED)
        except TrackingUnavailableError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(EXIT_RETRY)


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="shapgov")
def main() -> None:
    """SHAP governance for MLflow: exact explanations, an additivity policy, audit trails.

    Exit codes: 0 done, 1 a governance check said no (additivity failed, approval
    rejected, approving without EDIT permission), 2 bad usage or input, 75 the tracking
    server did not answer (retry; nothing incomplete is ever approved).
    """


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def matrix(fmt: str) -> None:
    """Print the compatibility matrix: model families, explainers, support per task."""
    from shapgov.planning.compatibility import TASKS, to_markdown
    from shapgov.planning.compatibility import matrix as load

    frame = load()
    if fmt == "markdown":
        click.echo(to_markdown(frame), nl=False)
    elif fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=2))
    else:
        cols = ["family", "explainer", *TASKS]
        click.echo(frame[cols].to_string(index=False))


@main.command()
@click.option(
    "--rows",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of the Deep-vs-Kernel cross-check.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("shapgov-reports"),
    show_default=True,
    help="Where the compliance reports go.",
)
@click.option(
    "--case",
    "only",
    multiple=True,
    type=click.Choice(CASE_NAMES),
    help="Run only this case (repeat for several); default: all six.",
)
@_tracking_option
def demo(rows: int, out_dir: Path, only: tuple[str, ...], tracking_uri: str | None) -> None:
    """The governance loop end to end on data that ships with scikit-learn: fit, explain,
    log, register, approve (signed) and report six blueprints (default store:
    sqlite:///mlflow.db here)."""
    uri = _use_store(tracking_uri)
    from shapgov.demo import run

    verdicts = run(rows=rows, out_dir=out_dir, tracking_uri=uri, only=only, echo=click.echo)
    if not all(v.approved for v in verdicts):
        sys.exit(EXIT_REFUSED)


@main.command()
@model_uri_option
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rows to explain: a .csv or .parquet file with the model's input columns.",
)
@click.option(
    "--target",
    default=None,
    help="Column of --data with the true target (dropped "
    "before explaining; enables permutation impact).",
)
@click.option(
    "--key",
    "key_column",
    default=None,
    help="Column of --data naming each row (an applicant ID): kept as the rows' keys in "
    "the set and the report, not explained.",
)
@click.option(
    "--background",
    "background_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Background rows (.csv/.parquet; default: a sample of --data). Also the XEMP exemplars.",
)
@click.option(
    "--sample",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows of --data explained.",
)
@click.option(
    "--background-size",
    default=None,
    type=click.IntRange(min=1),
    help="Sample this many background rows (seeded). Default: every row of --background; "
    "200 rows of --data without one. The set stores the rows used.",
)
@click.option("--random-state", default=0, show_default=True, help="Seed of every sample.")
@click.option(
    "--run-id",
    default=None,
    help="Run to log into (default: the model's source run, else a new run).",
)
@click.option("--experiment", default="shapgov", show_default=True, help="Experiment of a new run.")
@click.option(
    "--analyses/--no-analyses",
    default=True,
    show_default=True,
    help="Also log XEMP and the SHAP-vs-XEMP comparison.",
)
@click.option(
    "--time-column",
    default=None,
    help="Column of --data with each row's time: also explain by time window (drift "
    "flagged); it is not a feature unless the model uses it.",
)
@click.option(
    "--freq",
    default=None,
    help="Windows by period: a pandas period alias (M months, W or W-MON, Q or Q-NOV, Y, D, "
    "h) or an offset alias that stands for one (MS, ME, QS, QE, YS, YE).",
)
@click.option(
    "--windows",
    default=None,
    help="Windows by edges instead: comma-separated increasing times (2024-01-01,2024-04-01,...).",
)
@click.option(
    "--players",
    "players_json",
    default=None,
    help='Columns explained as one player, as JSON: \'{"sales": ["lag_1", "lag_7"]}\'.',
)
@_tracking_option
def explain(
    model_uri: str,
    data_path: Path,
    target: str | None,
    key_column: str | None,
    background_path: Path | None,
    sample: int,
    background_size: int | None,
    random_state: int,
    run_id: str | None,
    experiment: str,
    analyses: bool,
    time_column: str | None,
    freq: str | None,
    windows: str | None,
    players_json: str | None,
    tracking_uri: str | None,
) -> None:
    """Explain a logged or registered model on a data file and log the artifact set.

    Exits 1 when the additivity policy fails (diagnostics logged, values withheld).
    """
    _use_store(tracking_uri)
    import mlflow
    from mlflow.exceptions import MlflowException

    from shapgov.errors import (
        AdditivityError,
        ShapgovError,
        TrackingPermissionError,
        TrackingUnavailableError,
    )
    from shapgov.mlflow import explain_and_log
    from shapgov.mlflow.evaluator import native_model
    from shapgov.mlflow.sampling import sample_xy
    from shapgov.mlflow.signature import conform_to_schema, input_schema

    data = _read_table(data_path)
    if key_column is not None:
        if key_column not in data.columns:
            raise click.BadParameter(
                f"{data_path} has no column {key_column!r}", param_hint="--key"
            )
        data = data.set_index(key_column)
    windowed = windowing(data, data_path, time_column, freq, windows, players_json)
    background = data if background_path is None else _read_table(background_path)
    y = None
    if target is not None:
        if target not in data.columns:
            raise click.BadParameter(f"{data_path} has no column {target!r}", param_hint="--target")
        y, data = data[target], data.drop(columns=[target])
        background = background.drop(columns=[target], errors="ignore")
    if key_column is not None and key_column in background.columns:
        background = background.drop(columns=[key_column])
    if windowed is not None:
        stamps = data.pop(time_column)
        background = background.drop(columns=[time_column], errors="ignore")
    try:
        loaded = mlflow.pyfunc.load_model(model_uri)
        schema = input_schema(loaded)
        if schema is not None:  # lossless casts to the signature, or exit 2 naming the column
            data = conform_to_schema(data, schema, what=str(data_path))
            background = conform_to_schema(background, schema, what="the background")
        model = native_model(loaded)
        data, background = stored_categories(model, data, background)
        if run_id is None:
            run_id = target_run(model_uri)
        else:
            mlflow.MlflowClient().get_run(run_id)  # it must exist
        if windowed is not None:  # the time travels with the sampled rows
            data = data.assign(**{time_column: stamps})
        rows, labels = sample_xy(data, y, sample, random_state)
        size = background_size or (len(background) if background_path else DEFAULT_BACKGROUND)
        bg, _ = sample_xy(background, None, size, random_state + 1)
        if run_id is None:
            mlflow.set_experiment(experiment)
            with mlflow.start_run(run_name=f"shapgov explain {model_uri}") as run:
                run_id = run.info.run_id
        click.echo(sampled("explaining", rows, data, data_path, random_state, "--sample"))
        click.echo(
            sampled(
                "background:",
                bg,
                background,
                background_path or data_path,
                random_state + 1,
                "--background-size" if background_path else "--background",
            )
        )
        click.echo(f"model {model_uri} (run {run_id})")
        e = explain_and_log(
            model,
            rows,
            run_id=run_id,
            y=labels,
            background=bg,
            training=bg,
            analyses=analyses,
            random_state=random_state,
            over_time=windowed,
        )
    except AdditivityError as err:
        click.echo(f"additivity failed; values withheld, diagnostics logged to run {run_id}")
        click.echo(f"  {err.report.describe()}", err=True)
        sys.exit(EXIT_REFUSED)
    except (TrackingPermissionError, TrackingUnavailableError):
        raise  # their own exit codes (see main)
    except ShapgovError as err:
        raise InputProblem(str(err)) from err
    except MlflowException as err:
        raise _tracking_problem(err, f"explaining {model_uri}") from err
    a = e.additivity
    click.echo(
        f"additivity {a.status} (max normalized mismatch {a.max_normalized_mismatch:.2e}); "
        f"explainers {', '.join(sorted(set(e.explainers.values())))}; logged to run {run_id}"
    )
    click.echo(e.game["description"])
    if windowed is not None:
        result = mlflow.artifacts.load_dict(f"runs:/{run_id}/shapgov/over_time.json")
        flagged = result["flagged_windows"]
        click.echo(
            f"explained over {len(result['windows'])} time windows; drift flagged in windows "
            f"{', '.join(flagged) or 'none'}; largest impact drift "
            f"{result['max_impact_drift']:.3f} (per-window figures: shapgov.window.* metrics)"
        )


@main.command()
@click.option("--run-id", default=None, help="Run whose artifact set is reported.")
@click.option("--model", "model_name", default=None, help="Registered model name (with --version).")
@click.option("--version", "model_version", default=None, help="Registered model version.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML report.",
)
@click.option(
    "--log/--no-log",
    default=True,
    show_default=True,
    help="Also log the report to the run (approval requires one).",
)
@click.option(
    "--rows",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Prediction Explanations sampled.",
)
@_tracking_option
def report(
    run_id: str | None,
    model_name: str | None,
    model_version: str | None,
    out: Path,
    log: bool,
    rows: int,
    tracking_uri: str | None,
) -> None:
    """Write the compliance report of --run-id RUN, or of --model NAME --version N."""
    if (run_id is None) == (model_name is None) or (model_name is None) != (model_version is None):
        raise click.UsageError("pass either --run-id RUN or both --model NAME and --version N")
    _use_store(tracking_uri)
    from shapgov.errors import ShapgovError, TrackingPermissionError, TrackingUnavailableError
    from shapgov.mlflow.reporting import report as write

    try:
        path = write(
            run_id=run_id, model=model_name, version=model_version, out=out, log=log, rows=rows
        )
    except (TrackingPermissionError, TrackingUnavailableError):
        raise  # their own exit codes (see main)
    except ShapgovError as err:
        raise InputProblem(str(err)) from err
    click.echo(f"report written to {path.resolve()}" + (" and logged to the run" if log else ""))


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--alias", default=None, help="Alias to set on approval (e.g. champion).")
@click.option("--allow-warn", is_flag=True, help="Accept additivity status 'warn'.")
@click.option(
    "--require-explaining-model",
    is_flag=True,
    help="Reject unless an explaining model carries this version's manifest hash.",
)
@click.option(
    "--max-impact-drift",
    type=click.FloatRange(min=0.0, max=2.0),
    default=None,
    help="Reject when a window's impact drift (L1 of impact shares against the reference "
    "window, 0..2) exceeds this, or when the set has no explanations over time.",
)
@click.option(
    "--min-reason-stability",
    type=click.FloatRange(min=0.0, max=1.0),
    default=None,
    help="Reject unless the set holds adverse-action reasons whose stability (mean share "
    "of a declined row's reasons kept across resamples of the reference population, "
    "0..1) is at least this.",
)
@click.option(
    "--min-adverse-impact-ratio",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    default=None,
    help="Reject when a protected group's adverse impact ratio (its approval rate over the "
    "reference group's) is below this (e.g. 0.8, the four-fifths screen), or when the set "
    "holds no fair-lending checks.",
)
@click.option(
    "--against",
    default=None,
    help="An alias (champion) or version of the same model: the challenger rules judge the "
    "comparison with it logged on this version's run (shapgov compare).",
)
@click.option(
    "--max-impact-rank-change",
    type=click.IntRange(min=0),
    default=None,
    help="With --against: reject when an input of the champion's top k moved more ranks "
    "than this in Feature Impact.",
)
@click.option(
    "--min-metric-gain",
    type=float,
    default=None,
    help="With --against: reject when ROC AUC (R2 for a regressor) gained less than this "
    "against the champion.",
)
@click.option(
    "--max-proxy-score",
    type=click.FloatRange(min=0.5, max=1.0),
    default=None,
    help="Reject when an input's proxy score for a protected attribute (cross-validated AUC, "
    "0.5..1) reaches this, or when the set holds no fair-lending checks.",
)
@click.option(
    "--as",
    "as_user",
    default=None,
    help="Who approves, on a store without authentication (default: $SHAPGOV_USER, else "
    "$SHAPGOV_APPROVER). On a shared server the signed-in user approves.",
)
@_tracking_option
def approve(
    name: str,
    version: str,
    alias: str | None,
    allow_warn: bool,
    require_explaining_model: bool,
    max_impact_drift: float | None,
    min_reason_stability: float | None,
    min_adverse_impact_ratio: float | None,
    max_proxy_score: float | None,
    against: str | None,
    max_impact_rank_change: int | None,
    min_metric_gain: float | None,
    as_user: str | None,
    tracking_uri: str | None,
) -> None:
    """Approve or reject registered model NAME at VERSION; exits 1 on rejection, or when a
    review rule refuses the verdict (nothing is then recorded)."""
    import warnings

    from mlflow.exceptions import MlflowException

    from shapgov.errors import (
        ApprovalConflictError,
        LedgerIntegrityError,
        ReviewRefusedError,
        ShapgovError,
        TrackingPermissionError,
        TrackingUnavailableError,
        UnsignedVerdictWarning,
    )
    from shapgov.mlflow.approval import approve as run_approval
    from shapgov.review.identity import current_identity

    _use_store(tracking_uri)
    try:
        actor = current_identity(as_user) if as_user else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnsignedVerdictWarning)
            result = run_approval(
                name,
                version,
                actor=actor,
                alias=alias,
                allow_warn=allow_warn,
                require_explaining_model=require_explaining_model,
                max_impact_drift=max_impact_drift,
                min_reason_stability=min_reason_stability,
                min_adverse_impact_ratio=min_adverse_impact_ratio,
                max_proxy_score=max_proxy_score,
                against=against,
                max_impact_rank_change=max_impact_rank_change,
                min_metric_gain=min_metric_gain,
            )
        unsigned = [w for w in caught if issubclass(w.category, UnsignedVerdictWarning)]
        for w in caught:  # every other warning is shown as it would have been
            if w not in unsigned:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except MlflowException as err:
        raise _tracking_problem(err, f"approving {name} version {version}") from err
    except (ReviewRefusedError, LedgerIntegrityError) as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(EXIT_REFUSED)
    except ShapgovError as err:  # a malformed approval key, ...
        if isinstance(err, TrackingPermissionError | TrackingUnavailableError):
            raise
        if isinstance(err, ApprovalConflictError):
            click.echo(f"Error: {err}", err=True)
            sys.exit(EXIT_RETRY)
        raise InputProblem(str(err)) from err
    for warning in unsigned:
        click.echo(f"note: {warning.message}")
    click.echo(f"{name} version {version}: {result.verdict}")
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    if not result.approved:
        sys.exit(EXIT_REFUSED)


@main.command()
@click.argument("name")
@click.argument("version")
@_tracking_option
def verify(name: str, version: str, tracking_uri: str | None) -> None:
    """Verify the signed verdict of registered model NAME at VERSION and that its set is
    still the one approved; exits 1 when it does not verify (key: SHAPGOV_APPROVAL_KEY)."""
    from mlflow.exceptions import MlflowException

    from shapgov.errors import ShapgovError, TrackingPermissionError, TrackingUnavailableError
    from shapgov.mlflow.signing import verify_version

    _use_store(tracking_uri)
    try:
        result = verify_version(name, version)
    except MlflowException as err:
        raise _tracking_problem(err, f"verifying {name} version {version}") from err
    except (TrackingPermissionError, TrackingUnavailableError):
        raise  # their own exit codes (see main)
    except ShapgovError as err:
        raise InputProblem(str(err)) from err
    if result.verified:
        click.echo(
            f"{name} version {version}: {result.verdict}, signed by the approval key "
            f"(approver {result.approver}); the set is the one approved"
        )
        return
    click.echo(f"{name} version {version}: NOT verified")
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    sys.exit(EXIT_REFUSED)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5055, show_default=True, type=int)
@click.option("--secret", envvar="SHAPGOV_WEBHOOK_SECRET", default=None, help="Webhook secret.")
@click.option("--alias", default=None, help="Alias to set on approval.")
@click.option("--allow-warn", is_flag=True, help="Accept additivity status 'warn'.")
@_tracking_option
def webhook(
    host: str,
    port: int,
    secret: str | None,
    alias: str | None,
    allow_warn: bool,
    tracking_uri: str | None,
) -> None:
    """Serve the approval check for MLflow's model_version.created webhook."""
    from wsgiref.simple_server import make_server

    from shapgov.mlflow.webhook import make_app

    _use_store(tracking_uri)
    server = make_server(host, port, make_app(secret=secret, alias=alias, allow_warn=allow_warn))
    click.echo(f"shapgov approval webhook on http://{host}:{port}/")
    server.serve_forever()


for command in (
    keys, reproduce, reasons, roles, finding, signoff, reject, review, ledger, document, compare
):  # fmt: skip
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
