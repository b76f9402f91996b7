"""``shapgov document``: the model documentation of a registered version, as an editable
Word file and a PDF, from its artifact set alone (:mod:`shapgov.mlflow.documenting`).

Exit codes as every command: 0 written, 1 refused (the set was altered after its verdict,
or the ledger does not verify), 2 bad input (an unknown version or format, a template
with unknown placeholders), 3 no Chromium to print the PDF, 75 the server did not answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_REFUSED = 1
EXIT_NO_RENDERER = 3


def _version(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, version = value.rpartition("/")
    if not sep or not name or not version:
        raise click.BadParameter("give the registered model as NAME/VERSION, e.g. credit/3")
    return name, version


@click.command()
@click.option("--model", "model", default=None, help="The registered version, as NAME/VERSION.")
@click.option(
    "--format",
    "formats",
    type=click.Choice(["docx", "pdf"]),
    multiple=True,
    help="docx, pdf, or both (repeat the option; default: both).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory the documents are written to.",
)
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A Word template replacing shapgov's (start from --write-template's copy).",
)
@click.option(
    "--write-template",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write shapgov's default Word template to this file (to edit) and stop.",
)
@click.option(
    "--log/--no-log",
    default=True,
    help="Log the documents beside the set and record them in the approval ledger.",
)
@click.option(
    "--as",
    "as_user",
    default=None,
    help="Who documents, on a store without authentication (default: $SHAPGOV_USER).",
)
@click.option(
    "--tracking-uri",
    default=None,
    envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
)
def document(
    model: str | None,
    formats: tuple[str, ...],
    out_dir: Path,
    template: Path | None,
    write_template: Path | None,
    log: bool,
    as_user: str | None,
    tracking_uri: str | None,
) -> None:
    """Write the model documentation (Word and PDF) of --model NAME/VERSION."""
    from shapgov.cli_review import run_action
    from shapgov.errors import AlteredSetError, DocumentRendererError
    from shapgov.mlflow.documenting import default_template_bytes
    from shapgov.mlflow.documenting import document as write

    if write_template is not None:
        write_template.write_bytes(default_template_bytes())
        click.echo(f"default template written to {write_template.resolve()}")
        return
    target = _version(model)
    if target is None:
        raise click.UsageError("pass --model NAME/VERSION (or --write-template FILE)")
    name, version = target

    def action(who: object) -> object:
        try:
            return write(
                name, version, formats=formats or ("docx", "pdf"), out_dir=out_dir,
                template=template, log=log, actor=who,
            )  # fmt: skip
        except AlteredSetError as err:  # refused, not bad input
            click.echo(f"refused: {err}", err=True)
            sys.exit(EXIT_REFUSED)

    try:
        result = run_action(tracking_uri, as_user, action, identify=log)
    except DocumentRendererError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(EXIT_NO_RENDERER)
    for fmt, path in result.paths.items():
        click.echo(f"{fmt}: {path.resolve()} (SHA-256 {result.sha256[fmt]})")
    click.echo(f"from the set with manifest SHA-256 {result.manifest_sha256}")
    if result.logged_to:
        click.echo(f"logged to the source run under {result.logged_to}; {result.ledger_note}")
