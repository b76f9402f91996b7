"""``shapgov compare NAME CHAMPION CHALLENGER --data ROWS``: a challenger against the
champion on the same rows, in one game (:mod:`shapgov.mlflow.comparing`), logged on the
challenger's run; ``--reproduce`` runs a logged comparison again from the registry alone.

CHAMPION and CHALLENGER are versions (``3``) or aliases (``@champion``). Exit codes: 0
done (or reproduced bit for bit), 1 a reproduction that differs, 2 bad input, 75 the
server did not answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _uri(name: str, which: str) -> str:
    return f"models:/{name}{which}" if which.startswith("@") else f"models:/{name}/{which}"


@click.command()
@click.argument("name")
@click.argument("champion")
@click.argument("challenger")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Rows to compare on (.csv or .parquet).",
)
@click.option(
    "--target", default=None, help="Column of --data with the outcomes (metrics, calibration)."
)
@click.option(
    "--background",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Background rows (default: a seeded sample of 200 rows of --data).",
)
@click.option(
    "--cutoff",
    type=float,
    default=None,
    help="Probability at or above which a row is declined: lists the rows whose decision changes.",
)
@click.option(
    "--k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Top-k of the agreement figures.",
)
@click.option("--log/--no-log", default=True, help="Log the comparison on the challenger's run.")
@click.option(
    "--reproduce",
    is_flag=True,
    help="Run the logged comparison again from the registry and compare bit for bit.",
)
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
)
def compare(
    name: str, champion: str, challenger: str, data: Path | None, target: str | None,
    background: Path | None, cutoff: float | None, k: int, log: bool, reproduce: bool,
    tracking_uri: str | None,
) -> None:  # fmt: skip
    """Compare registered model NAME's CHALLENGER version with its CHAMPION."""
    from shapgov.cli_common import InputProblem, _read_table, _use_store
    from shapgov.errors import ShapgovError

    _use_store(tracking_uri)
    try:
        if reproduce:
            from mlflow.tracking import MlflowClient

            from shapgov.mlflow.comparing import reproduce_comparison

            client = MlflowClient()

            def version(which: str) -> str:
                if which.startswith("@"):
                    return str(client.get_model_version_by_alias(name, which[1:]).version)
                return which

            same, differences = reproduce_comparison(name, version(champion), version(challenger))
            if not same:
                click.echo(f"NOT reproduced: {', '.join(differences)} differ", err=True)
                sys.exit(1)
            click.echo("reproduced from the registry alone: every figure identical, bit for bit")
            return
        if data is None:
            raise click.UsageError("pass --data ROWS (or --reproduce)")
        import shapgov

        rows = _read_table(data)
        y = None
        if target is not None:
            if target not in rows.columns:
                raise InputProblem(f"--target {target!r} is not a column of {data}")
            y = rows.pop(target).to_numpy()
        bg = None if background is None else _read_table(background)
        decision = None if cutoff is None else shapgov.Decision(cutoff=cutoff)
        result = shapgov.compare_versions(
            _uri(name, champion), _uri(name, challenger), rows, y=y, background=bg,
            decision=decision, k=k, log=log,
        )  # fmt: skip
    except ShapgovError as err:
        raise InputProblem(str(err)) from err
    s = result.summary
    versions = f"v{s['challenger']['version']} against champion v{s['champion']['version']}"
    click.echo(f"{name}: challenger {versions} on {s['rows']} rows, in {s['space']}")
    click.echo(
        f"Feature Impact rank correlation {s['rank_correlation']:.3f}, top-{s['k']} overlap "
        f"{s['top_k_overlap']:.2f}; score PSI {s['psi']:.3f}, KS {s['ks']['statistic']:.3f}"
    )
    for r in result.impact.head(3).itertuples():
        click.echo(
            f"  {r.input}: impact share {r.share_champion:.1%} -> {r.share_challenger:.1%} "
            f"(rank {r.rank_champion} -> {r.rank_challenger})"
        )
    level = f"{100 * s['settings']['confidence']:.0f}%"
    for m in result.metrics.itertuples():
        click.echo(
            f"  {m.metric}: {m.champion:.4f} -> {m.challenger:.4f} (difference "
            f"{m.difference:+.4f}, {level} interval {m.low:+.4f} .. {m.high:+.4f})"
        )
    if "decisions_changed" in s:
        click.echo(
            f"  decisions changed: {s['decisions_changed']} ({s['newly_declined']} newly "
            f"declined, {s['newly_approved']} newly approved)"
        )
    if s.get("logged_to"):
        click.echo(f"logged on the challenger's run under {s['logged_to']}")
