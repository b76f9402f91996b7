"""The ``shapgov`` command line."""

from __future__ import annotations

import sys

import click

from shapgov._version import __version__


@click.group()
@click.version_option(__version__, prog_name="shapgov")
def main() -> None:
    """SHAP governance for MLflow: exact explanations, an additivity policy, audit trails."""


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
    from shapgov.compatibility import TASKS, to_markdown
    from shapgov.compatibility import matrix as load

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
@click.option("--rows", default=5, show_default=True, help="Predictions to explain per model.")
@click.option("--top", default=3, show_default=True, help="Top features shown per prediction.")
def demo(rows: int, top: int) -> None:
    """Explain example blueprints on datasets that ship with scikit-learn."""
    from shapgov.demo import run

    run(rows=rows, top=top, echo=click.echo)


@main.command()
@click.argument("name")
@click.argument("version")
@click.option("--alias", default=None, help="Alias to set on approval (e.g. champion).")
@click.option("--allow-warn", is_flag=True, help="Accept additivity status 'warn'.")
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
)
def approve(
    name: str, version: str, alias: str | None, allow_warn: bool, tracking_uri: str | None
) -> None:
    """Approve or reject registered model NAME at VERSION; exits 1 on rejection."""
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    from shapgov.mlflow.approval import approve as run_approval

    mlflow.set_tracking_uri(tracking_uri or "sqlite:///mlflow.db")
    mlflow.set_registry_uri(tracking_uri or "sqlite:///mlflow.db")
    result = run_approval(name, version, alias=alias, allow_warn=allow_warn)
    click.echo(f"{name} version {version}: {result.verdict}")
    for reason in result.reasons:
        click.echo(f"  - {reason}")
    if not result.approved:
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5055, show_default=True, type=int)
@click.option("--secret", envvar="SHAPGOV_WEBHOOK_SECRET", default=None, help="Webhook secret.")
@click.option("--alias", default=None, help="Alias to set on approval.")
@click.option("--allow-warn", is_flag=True, help="Accept additivity status 'warn'.")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI")
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

    import mlflow

    from shapgov.mlflow.webhook import make_app

    mlflow.set_tracking_uri(tracking_uri or "sqlite:///mlflow.db")
    server = make_server(host, port, make_app(secret=secret, alias=alias, allow_warn=allow_warn))
    click.echo(f"shapgov approval webhook on http://{host}:{port}/")
    server.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    main()
