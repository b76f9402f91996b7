"""Commands of the review workflow (:mod:`shapgov.review`): ``shapgov roles grant|revoke``,
``shapgov finding add|answer|close``, ``shapgov signoff``, ``shapgov reject``,
``shapgov review`` (a version's state) and ``shapgov ledger verify``.

Who acts: the user the tracking server signs in (``MLFLOW_TRACKING_USERNAME``) on a shared
server with authentication; elsewhere the declared ``--as NAME`` or ``SHAPGOV_USER``.
Exit codes as every command: 0 done, 1 a rule refused the action (nothing recorded) or
the ledger does not verify, 2 bad input, 75 the server did not answer or concurrent
actions kept taking the ledger's next place (run it again).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

EXIT_REFUSED = 1
EXIT_RETRY = 75


def _as_option(fn: Any) -> Any:
    return click.option(
        "--as",
        "as_user",
        default=None,
        help="Who acts, on a store without authentication (default: $SHAPGOV_USER). On a "
        "shared server the signed-in user acts and a different name is refused.",
    )(fn)


def _tracking(fn: Any) -> Any:
    return click.option(
        "--tracking-uri",
        default=None,
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).",
    )(fn)


def run_action(
    tracking_uri: str | None,
    as_user: str | None,
    action: Callable[[Any], Any],
    *,
    identify: bool = True,
) -> Any:
    """Point MLflow at the store, resolve who acts (``identify``) and run
    ``action(identity)``, turning the workflow's typed errors into exit codes."""
    from mlflow.exceptions import MlflowException

    from shapgov.cli_common import InputProblem, _tracking_problem, _use_store
    from shapgov.errors import (
        InputError,
        LedgerConflictError,
        LedgerIntegrityError,
        ReviewRefusedError,
    )
    from shapgov.review.identity import current_identity

    _use_store(tracking_uri)
    try:
        return action(current_identity(as_user) if identify else None)
    except (ReviewRefusedError, LedgerIntegrityError) as err:
        click.echo(f"refused: {err}", err=True)
        sys.exit(EXIT_REFUSED)
    except LedgerConflictError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(EXIT_RETRY)
    except InputError as err:
        raise InputProblem(str(err)) from err
    except MlflowException as err:
        raise _tracking_problem(err, "recording a review action") from err


@click.group()
def roles() -> None:
    """Review roles (developer, validator, approver), granted by an administrator."""


@roles.command("grant")
@click.option("--user", required=True, help="The user granted the role.")
@click.option("--role", required=True, type=click.Choice(["developer", "validator", "approver"]))
@click.option("--model", default=None, help="Registered model (default: every model).")
@click.option("--revoke", is_flag=True, help="Take the role back instead.")
@_as_option
@_tracking
def grant(
    user: str, role: str, model: str | None, revoke: bool, as_user: str | None,
    tracking_uri: str | None,
) -> None:  # fmt: skip
    """Grant ROLE to USER on a model (or every model), as a signed ledger entry. The review
    workflow is in force for a model from its first grant on."""
    from shapgov.review.actions import grant_role

    entry = run_action(
        tracking_uri, as_user,
        lambda who: grant_role(user, role, model=model, revoke=revoke, actor=who),
    )  # fmt: skip
    what = "revoked from" if revoke else "granted to"
    click.echo(
        f"{role} {what} {user} on {model or 'every model'} (ledger entry {entry.seq}, by "
        f"{entry.actor}{'' if entry.authenticated else ', declared'})"
    )


@click.group()
def finding() -> None:
    """Validators' findings on a version: add (validator), answer (owner), close
    (validator). An open High finding blocks approval."""


@finding.command("add")
@click.argument("name")
@click.argument("version")
@click.option("--severity", required=True, type=click.Choice(["High", "Medium", "Low"]))
@click.option("--title", required=True)
@click.option("--text", required=True, help="What was found and what is asked.")
@click.option("--owner", required=True, help="The user who must answer it.")
@click.option("--due", required=True, help="Due date, YYYY-MM-DD.")
@_as_option
@_tracking
def add(
    name: str, version: str, severity: str, title: str, text: str, owner: str, due: str,
    as_user: str | None, tracking_uri: str | None,
) -> None:  # fmt: skip
    """Record a finding on registered model NAME at VERSION."""
    from shapgov.review.actions import add_finding

    found = run_action(
        tracking_uri, as_user,
        lambda who: add_finding(
            name, version, severity=severity, title=title, text=text, owner=owner, due=due,
            actor=who,
        ),
    )  # fmt: skip
    click.echo(f"finding {found.id} ({found.severity}) on {name} v{version}, owner {owner}")


@finding.command("answer")
@click.argument("name")
@click.argument("version")
@click.argument("finding_id")
@click.option("--text", required=True, help="The remediation, or why none is needed.")
@_as_option
@_tracking
def answer(
    name: str, version: str, finding_id: str, text: str, as_user: str | None,
    tracking_uri: str | None,
) -> None:  # fmt: skip
    """The owner answers finding FINDING_ID (e.g. F12) on NAME at VERSION."""
    from shapgov.review.actions import answer_finding

    entry = run_action(
        tracking_uri, as_user,
        lambda who: answer_finding(name, version, finding_id, text=text, actor=who),
    )  # fmt: skip
    click.echo(f"finding {finding_id} answered (ledger entry {entry.seq})")


@finding.command("close")
@click.argument("name")
@click.argument("version")
@click.argument("finding_id")
@click.option("--text", default="", help="The closing note.")
@_as_option
@_tracking
def close(
    name: str, version: str, finding_id: str, text: str, as_user: str | None,
    tracking_uri: str | None,
) -> None:  # fmt: skip
    """A validator closes finding FINDING_ID on NAME at VERSION."""
    from shapgov.review.actions import close_finding

    entry = run_action(
        tracking_uri, as_user,
        lambda who: close_finding(name, version, finding_id, text=text, actor=who),
    )  # fmt: skip
    click.echo(f"finding {finding_id} closed (ledger entry {entry.seq})")


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--text", default="", help="The sign-off note.")
@_as_option
@_tracking
def signoff(
    name: str, version: str, text: str, as_user: str | None, tracking_uri: str | None
) -> None:
    """A validator signs off the set logged for NAME at VERSION (four eyes: the approver
    must be another user)."""
    from shapgov.review.actions import sign_off

    entry = run_action(
        tracking_uri, as_user, lambda who: sign_off(name, version, text=text, actor=who)
    )
    click.echo(
        f"{name} v{version} signed off by {entry.actor} (set {entry.body['manifest_sha256'][:12]}"
        f"…, ledger entry {entry.seq})"
    )


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True, help="Why the version is rejected.")
@_as_option
@_tracking
def reject(
    name: str, version: str, reason: str, as_user: str | None, tracking_uri: str | None
) -> None:
    """An approver rejects NAME at VERSION for REASON (a signed verdict)."""
    from shapgov.mlflow.approval import approve

    result = run_action(
        tracking_uri, as_user,
        lambda who: approve(name, version, actor=who, reject_reason=reason),
    )  # fmt: skip
    click.echo(f"{name} version {version}: {result.verdict}")
    for line in result.reasons:
        click.echo(f"  - {line}")


@click.command()
@click.argument("name")
@click.argument("version")
@_tracking
def review(name: str, version: str, tracking_uri: str | None) -> None:
    """Show the review state of NAME at VERSION: its state, findings with their history,
    sign-offs and verdicts; exits 1 when the ledger does not verify."""
    from shapgov.review.actions import review_state, set_of

    def show(_: Any) -> tuple[Any, Any, Any]:
        import mlflow

        client = mlflow.MlflowClient()
        state, chain = review_state(name, version, client=client)
        return state, chain, set_of(client, name, str(version))[0]

    state, chain, manifest = run_action(tracking_uri, None, show, identify=False)
    click.echo(f"{name} version {version}: {state.standing(manifest)}")
    click.echo(
        "review workflow: " + ("in force" if state.in_force else "not in force (no role granted)")
    )
    for f in state.findings:
        click.echo(f"  {f.id} [{f.severity}, {f.status}] {f.title} (owner {f.owner}, due {f.due})")
        for e in f.history:
            click.echo(f"      {e.time} {e.kind} by {e.actor}: {e.body.get('text', '')}")
    for e in state.signoffs:
        click.echo(f"  signed off by {e.actor} at {e.time} (entry {e.seq})")
    for e in state.verdicts:
        click.echo(f"  verdict {e.body.get('shapgov.approval')} by {e.actor} at {e.time}")
    if chain.problems:
        click.echo("the ledger does NOT verify:")
        for problem in chain.problems:
            click.echo(f"  - {problem}")
        sys.exit(EXIT_REFUSED)


@click.group()
def ledger() -> None:
    """The review ledger (hash-chained, signed entries)."""


@ledger.command("verify")
@_tracking
def verify_ledger(tracking_uri: str | None) -> None:
    """Check every entry of the ledger: exits 1 naming each entry deleted, altered,
    reordered or inserted."""
    from shapgov.review.ledger import read_chain

    def read(_: Any) -> Any:
        import mlflow

        return read_chain(mlflow.MlflowClient())

    chain = run_action(tracking_uri, None, read, identify=False)
    if chain.problems:
        click.echo(f"the ledger does NOT verify ({len(chain.entries)} entries read):")
        for problem in chain.problems:
            click.echo(f"  - {problem}")
        sys.exit(EXIT_REFUSED)
    click.echo(f"the ledger verifies: {len(chain.entries)} entries, each signed and chained")
