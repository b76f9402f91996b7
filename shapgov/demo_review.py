"""The demo's approvals: a demo approval key where none is configured, and the review
loop, in which a declared developer, validator and approver take one case through the
review workflow (:mod:`shapgov.review`) on the embedded store; the demo then prints how to
open the same versions on the review page."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ADMIN, DEVELOPER, VALIDATOR, APPROVER = "admin", "dana", "victor", "ada"


@contextmanager
def declared(user: str) -> Iterator[None]:
    """``SHAPGOV_USER`` is ``user`` inside the block (the embedded store authenticates
    nobody: users declare themselves)."""
    before = os.environ.get("SHAPGOV_USER")
    os.environ["SHAPGOV_USER"] = user
    try:
        yield
    finally:
        if before is None:
            del os.environ["SHAPGOV_USER"]
        else:
            os.environ["SHAPGOV_USER"] = before


def review_and_approve(name: str, version: str, *, echo: Callable[[str], None]) -> Any:
    """Grant the three roles on model ``name``, show a refused self-approval, record,
    answer and close a finding, sign off, and approve as the approver; returns the
    verdict."""
    import shapgov
    from shapgov.errors import ReviewRefusedError
    from shapgov.review import (
        Identity,
        add_finding,
        answer_finding,
        close_finding,
        grant_role,
        sign_off,
    )

    def who(user: str) -> Identity:
        return Identity(user, False, "declared by the demo")

    for user, role in ((DEVELOPER, "developer"), (VALIDATOR, "validator"),
                       (APPROVER, "approver")):  # fmt: skip
        grant_role(user, role, model=name, actor=who(ADMIN))
    echo(
        f"   review: roles on {name} granted (developer {DEVELOPER}, validator {VALIDATOR}, "
        f"approver {APPROVER}); identities declared, not authenticated (sqlite has no sign-in)"
    )
    try:
        shapgov.approve(name, version, actor=who(DEVELOPER))
    except ReviewRefusedError as err:
        echo(f"   review: {DEVELOPER} tries to approve: refused ({str(err).split(' (')[0]})")
    finding = add_finding(
        name, version, severity="High", title="Cut-off not justified",
        text="Explain why the decline cut-off is the one the policy sets.", owner=DEVELOPER,
        due="2027-01-31", actor=who(VALIDATOR),
    )  # fmt: skip
    answer_finding(name, version, finding.id, text="The credit policy sets it; see the "
                   "decision rule in the report.", actor=who(DEVELOPER))  # fmt: skip
    close_finding(name, version, finding.id, text="Accepted.", actor=who(VALIDATOR))
    sign_off(name, version, text="Validated.", actor=who(VALIDATOR))
    echo(
        f"   review: {VALIDATOR} recorded High finding {finding.id}, {DEVELOPER} answered it, "
        f"{VALIDATOR} closed it and signed the set off; {APPROVER} approves"
    )
    return shapgov.approve(name, version, alias="champion", actor=who(APPROVER))


def review_page_hint(uri: str, key: str | None) -> str:
    """How to open the demo's versions on the review page (``mlflow server --app-name
    shapgov`` on the same store, behind MLflow's sign-in)."""
    key_part = f"SHAPGOV_APPROVAL_KEY_FILE={key} " if key else ""
    return (
        "Review the versions in the browser (the review page, behind MLflow's sign-in; "
        "choose an admin password of 12 or more characters):\n"
        "  export MLFLOW_AUTH_ADMIN_PASSWORD='choose-a-password' "
        "MLFLOW_FLASK_SERVER_SECRET_KEY=$(python3 -c "
        "'import secrets; print(secrets.token_hex())')\n"
        f"  {key_part}MLFLOW_TRACKING_USERNAME=admin "
        "MLFLOW_TRACKING_PASSWORD=$MLFLOW_AUTH_ADMIN_PASSWORD \\\n"
        f"    mlflow server --app-name shapgov --backend-store-uri {uri} --workers 1 --port 5000\n"
        "  then open http://127.0.0.1:5000/shapgov/ and sign in as admin"
    )


@contextmanager
def demo_key(out: Path, echo: Callable[[str], None]) -> Iterator[Path | None]:
    """Sign the demo's verdicts: with the approval key configured (yields None), else with
    a demo key kept beside the reports (yields its path; a real approval service holds its
    own, see docs/mlflow.md)."""
    from shapgov.mlflow import signing

    if signing.signing_key() is not None:
        yield None
        return
    path = (out / "demo-approval.key").resolve()
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n")
        path.chmod(0o600)
    echo(f"verdicts signed with a demo approval key ({path})")
    os.environ["SHAPGOV_APPROVAL_KEY_FILE"] = str(path)
    try:
        yield path
    finally:
        del os.environ["SHAPGOV_APPROVAL_KEY_FILE"]


def verify_hint(key: Path, case_name: str) -> str:
    """The command that verifies the newest version the demo registered for the case."""
    from mlflow.tracking import MlflowClient

    name = f"shapgov-demo-{case_name}"
    versions = MlflowClient().search_model_versions(f"name = '{name}'")
    newest = max((int(v.version) for v in versions), default=1)
    command = f"SHAPGOV_APPROVAL_KEY_FILE={key} shapgov verify {name} {newest}"
    return f"verify a verdict with\n  {command}"
