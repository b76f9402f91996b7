"""Commands of the approval loop beside ``shapgov approve``: ``shapgov keys new`` (the key
that signs verdicts, :mod:`shapgov.mlflow.signing`) and ``shapgov reproduce`` (re-derive
an approved set from the registry alone, :mod:`shapgov.mlflow.reproduce`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def keys() -> None:
    """Approval keys: 'shapgov approve' signs its verdicts with one, 'shapgov verify' and
    serving check them (SHAPGOV_APPROVAL_KEY_FILE or SHAPGOV_APPROVAL_KEY)."""


@keys.command("new")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The key file to create (never overwritten); keep it where only the approval "
    "service can read it.",
)
def new(out: Path) -> None:
    """Create a new approval key in a file only its owner can read."""
    from shapgov.errors import InputError
    from shapgov.mlflow.signing import new_key_file

    try:
        identifier = new_key_file(out)
    except (FileExistsError, InputError) as err:
        raise click.UsageError(str(err)) from err
    click.echo(f"created approval key {identifier} in {out} (mode 0600)")
    click.echo("sign and verify with it:")
    click.echo(f"  export SHAPGOV_APPROVAL_KEY_FILE={out.resolve()}")


@click.command()
@click.argument("name")
@click.argument("version")
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
)
def reproduce(name: str, version: str, tracking_uri: str | None) -> None:
    """Re-explain registered model NAME at VERSION from the registry alone (its flavor, the
    set's explained rows and stored background, the set's game) and compare with the
    values of its artifact set; exits 1 when they differ."""
    import os
    import sys

    import mlflow

    from shapgov.errors import InputError
    from shapgov.mlflow.reproduce import reproduce as rederive

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri or "sqlite:///mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        result = rederive(name, version)
    except InputError as err:
        raise click.UsageError(str(err)) from err
    click.echo(result.describe())
    if not result.reproduced:
        sys.exit(1)
