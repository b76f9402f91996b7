"""The review workflow on the embedded store (declared identities): roles, four eyes,
findings, sign-offs, and a hash-chained ledger whose every deletion, alteration,
reordering and insertion ``verify`` names."""

from __future__ import annotations

import json

import mlflow
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
import shapgov.mlflow
from shapgov.errors import (
    IdentityError,
    InputError,
    LedgerIntegrityError,
    ReviewRefusedError,
)
from shapgov.mlflow.signing import verify_version
from shapgov.review import (
    Identity,
    add_finding,
    answer_finding,
    close_finding,
    current_identity,
    grant_role,
    read_chain,
    review_state,
    sign_off,
)

KEY = "r" * 32
ADMIN = Identity("admin", False, "test")
DEV = Identity("dana", False, "test")
VAL = Identity("victor", False, "test")
APP = Identity("ada", False, "test")


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    monkeypatch.delenv("SHAPGOV_APPROVAL_OLD_KEYS_FILE", raising=False)
    monkeypatch.delenv("SHAPGOV_APPROVER", raising=False)


def _logged(monkeypatch, name="credit"):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    monkeypatch.setenv("SHAPGOV_USER", DEV.name)  # the developer logs the set
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:30], background=X.iloc[100:160], analyses=False
        )
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    monkeypatch.delenv("SHAPGOV_USER")
    return mlflow.register_model(info.model_uri, name).version


def _roles(model="credit"):
    for user, role in ((DEV, "developer"), (VAL, "validator"), (APP, "approver")):
        grant_role(user.name, role, model=model, actor=ADMIN)


def _tags(name, version):
    return dict(mlflow.MlflowClient().get_model_version(name, version).tags)


def _refused(match, action, name="credit", version="1"):
    """The action is refused with a typed error and nothing is recorded."""
    client = mlflow.MlflowClient()
    before = (len(read_chain(client).entries), _tags(name, version))
    with pytest.raises(ReviewRefusedError, match=match):
        action()
    assert (len(read_chain(client).entries), _tags(name, version)) == before


def test_the_whole_review_loop_and_each_rule(store, key, monkeypatch, tmp_path):
    version = _logged(monkeypatch)
    _roles()
    approve = lambda who: shapgov.approve("credit", version, actor=who)  # noqa: E731
    # the developer cannot approve the set they logged, even holding the approver role
    grant_role(DEV.name, "approver", model="credit", actor=ADMIN)
    _refused("dana logged the set of credit version 1 and cannot approve it", lambda: approve(DEV))
    grant_role(DEV.name, "approver", model="credit", revoke=True, actor=ADMIN)
    _refused("needs the approver role", lambda: approve(DEV))
    # four eyes: an approval needs a validator's sign-off of this set
    _refused("no validator's sign-off", lambda: approve(APP))
    _refused("needs the validator role", lambda: add_finding(
        "credit", version, severity="High", title="t", text="x", owner="dana",
        due="2027-01-31", actor=APP))  # fmt: skip
    high = add_finding(
        "credit",
        version,
        severity="High",
        title="Monotonicity in income not checked",
        text="Show the partial dependence of income.",
        owner="dana",
        due="2027-01-31",
        actor=VAL,
    )
    assert high.id.startswith("F") and high.status == "open"
    _refused("open High findings", lambda: sign_off("credit", version, actor=VAL))
    _refused("its owner is dana", lambda: answer_finding(
        "credit", version, high.id, text="done", actor=VAL))  # fmt: skip
    answer_finding("credit", version, high.id, text="Added the plot.", actor=DEV)
    _refused("needs the validator role", lambda: close_finding(
        "credit", version, high.id, actor=DEV))  # fmt: skip
    close_finding("credit", version, high.id, text="Checked.", actor=VAL)
    _refused("already closed", lambda: close_finding("credit", version, high.id, actor=VAL))
    medium = add_finding(
        "credit", version, severity="Medium", title="Stale reference window", text="Refresh.",
        owner="dana", due="2027-02-28", actor=VAL,
    )  # fmt: skip
    # a validator cannot validate a set they logged (the developer holds the role here)
    grant_role(DEV.name, "validator", model="credit", actor=ADMIN)
    _refused("cannot also validate it", lambda: sign_off("credit", version, actor=DEV))
    sign_off("credit", version, text="Validated.", actor=VAL)
    # a validator who is also an approver cannot approve their own sign-off
    grant_role(VAL.name, "approver", model="credit", actor=ADMIN)
    _refused("by a user other than victor", lambda: approve(VAL))
    verdict = approve(APP)
    assert verdict.approved
    tags = _tags("credit", version)
    assert tags["shapgov.approval.approver"] == "ada"
    assert tags["shapgov.approval.authenticated"] == "false"
    assert (
        f"open Medium findings: {medium.id} Stale reference window"
        in tags["shapgov.approval.reasons"]
    )
    review = json.loads(tags["shapgov.approval.review"])
    assert [s["by"] for s in review["signoffs"]] == ["victor"]
    assert verify_version("credit", version).verified
    state, chain = review_state("credit", version)
    assert chain.intact and state.standing(tags["shapgov.approval.manifest_sha256"]) == "approved"
    finding = next(f for f in state.findings if f.id == high.id)
    assert [e.kind for e in finding.history] == ["finding", "answer", "close"]
    assert [e.kind for e in chain.entries].count("role_grant") == 6
    # the report's approval section: findings with their history, declared identities
    html = shapgov.report(model="credit", version=version, out=tmp_path / "r.html").read_text()
    section = html[html.index('<section id="approval">') :]
    assert "Monotonicity in income not checked" in section and "Stale reference window" in section
    assert "answer by dana: Added the plot." in section and "close by victor: Checked." in section
    assert "<strong>not authenticated</strong>" in section
    assert "ada (declared, not authenticated" in section
    assert "Sign-offs: victor at" in section


def test_a_sign_off_is_of_one_set_and_a_rejection_needs_the_role(store, key, monkeypatch):
    version = _logged(monkeypatch)
    _roles()
    sign_off("credit", version, actor=VAL)
    client = mlflow.MlflowClient()
    run_id = client.get_model_version("credit", version).run_id
    # a new set logged into the version's run after the sign-off is not signed off
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(X, y)
    shapgov.mlflow.explain_and_log(
        model, X.iloc[:20], background=X.iloc[100:150], analyses=False, run_id=run_id
    )
    _refused("no validator's sign-off", lambda: shapgov.approve("credit", version, actor=APP))


def test_the_workflow_is_not_in_force_before_any_role_is_granted(store, key, monkeypatch):
    version = _logged(monkeypatch)
    verdict = shapgov.approve("credit", version, actor=DEV)  # no roles: the old approval
    assert verdict.approved and verify_version("credit", version).verified
    grant_role(VAL.name, "validator", actor=ADMIN)  # a global grant puts every model under it
    _refused("needs the approver role", lambda: shapgov.approve("credit", version, actor=DEV))


def test_declared_identities_and_typed_errors(store, key, monkeypatch):
    monkeypatch.delenv("SHAPGOV_USER", raising=False)
    with pytest.raises(IdentityError, match="SHAPGOV_USER"):
        current_identity()
    monkeypatch.setenv("SHAPGOV_USER", "zoe")
    assert current_identity() == Identity("zoe", False, "SHAPGOV_USER")
    version = _logged(monkeypatch)
    _roles()
    with pytest.raises(InputError, match="unknown role"):
        grant_role("zoe", "auditor", actor=ADMIN)
    bad = dict(severity="High", title="t", text="x", owner="dana", due="2027-01-31", actor=VAL)
    for field, value, match in (
        ("severity", "Critical", "unknown severity"),
        ("due", "31/01/2027", "not an ISO date"),
        ("title", "", "title is empty"),
        ("title", "x" * 201, "at most 200"),
    ):
        with pytest.raises(InputError, match=match):
            add_finding("credit", version, **{**bad, field: value})
    with pytest.raises(InputError, match="not a registered model version"):
        add_finding("credit", 7, **bad)
    with pytest.raises(InputError, match="no finding 'F99'"):
        answer_finding("credit", version, "F99", text="x", actor=DEV)
    monkeypatch.delenv("SHAPGOV_APPROVAL_KEY")
    with pytest.raises(InputError, match="need the approval key"):
        sign_off("credit", version, actor=VAL)


def _entry_run(client, seq):
    chain = read_chain(client)
    return next(e for e in chain.entries if e.seq == seq).run_id


def test_verify_names_a_deleted_altered_reordered_or_inserted_entry(store, key, monkeypatch):
    version = _logged(monkeypatch)
    _roles()
    finding = add_finding(
        "credit", version, severity="Low", title="Typo", text="In the report.", owner="dana",
        due="2027-01-31", actor=VAL,
    )  # fmt: skip
    sign_off("credit", version, actor=VAL)
    assert shapgov.approve("credit", version, actor=APP).approved
    client = mlflow.MlflowClient()
    assert verify_version("credit", version).verified
    seq = int(finding.id[1:])
    # deleted: one ledger run deleted by hand
    run_id = _entry_run(client, seq)
    client.delete_run(run_id)
    result = verify_version("credit", version)
    assert not result.verified
    assert f"entry {seq} was deleted (run {run_id} is in the trash" in result.reasons[0]
    with pytest.raises(LedgerIntegrityError, match=f"entry {seq} was deleted"):
        sign_off("credit", version, actor=VAL)  # nothing is added to a tampered ledger
    client.restore_run(run_id)
    assert verify_version("credit", version).verified
    # altered: the finding's text rewritten in its stored entry
    tags = client.get_run(run_id).data.tags
    original = tags["shapgov.ledger.entry.0"]
    client.set_tag(run_id, "shapgov.ledger.entry.0", original.replace("Typo", "Nothing"))
    assert (
        f"entry {seq} (finding by victor) does not match its hash: altered"
        in (verify_version("credit", version).reasons[0])
    )
    client.set_tag(run_id, "shapgov.ledger.entry.0", original)
    # reordered: two entries' contents swapped between their runs
    other = _entry_run(client, seq + 1)
    a, b = (client.get_run(r).data.tags for r in (run_id, other))
    for target, source in ((run_id, b), (other, a)):
        for t in [t for t in source if t.startswith("shapgov.ledger.")]:
            client.set_tag(target, t, source[t])
    reasons = verify_version("credit", version).reasons[0]
    assert f"says it is entry {seq + 1}: reordered" in reasons
    for target, source in ((run_id, a), (other, b)):
        for t in [t for t in source if t.startswith("shapgov.ledger.")]:
            client.set_tag(target, t, source[t])
    assert verify_version("credit", version).verified
    # inserted: a finished copy of an entry that no place in the chain names
    experiment = client.get_run(run_id).info.experiment_id
    copy = client.create_run(experiment, tags=dict(a))
    client.set_terminated(copy.info.run_id)
    assert (
        f"run {copy.info.run_id} holds an entry (number {seq}) that no place in the "
        in (verify_version("credit", version).reasons[0])
    )


def test_only_the_creator_of_a_new_ledger_names_its_index(store, key, monkeypatch):
    """Two actions on a ledger nobody has made yet: the one whose create_experiment wins
    names the index; the other waits for that name instead of making an index of its own
    (experiment tags can be overwritten, so two indexes could fork the chain: the cause of
    a load test's 'inserted' entry 1 on CI)."""
    import threading
    import time

    from shapgov.review import ledger

    client = mlflow.MlflowClient()
    # the other action: it has created the experiment and not yet named its index
    experiment = client.create_experiment(ledger.ledger_name())
    done: list = []
    waiting = threading.Thread(
        target=lambda: done.append(grant_role("dana", "developer", model="m", actor=ADMIN))
    )
    waiting.start()
    time.sleep(0.5)
    assert not done and not read_chain(client).entries  # it waits, and made no index
    index = client.create_run(experiment, tags={ledger.ROLE_TAG: "index"}).info.run_id
    client.set_experiment_tag(experiment, ledger.INDEX_TAG, index)
    waiting.join(timeout=30)
    assert done and done[0].run_id
    runs = client.search_runs([experiment], filter_string="tags.`shapgov.ledger.role` = 'index'")
    assert [r.info.run_id for r in runs] == [index]  # its entry went into the named index
    assert client.get_run(index).data.params["e00000001"].endswith(done[0].run_id)
    assert read_chain(client).intact
    # an experiment nobody names an index for: a typed error after the wait
    monkeypatch.setenv("SHAPGOV_APPROVAL_LEDGER", "hand-made-ledger")
    client.create_experiment("hand-made-ledger")
    monkeypatch.setattr(ledger, "INDEX_WAIT", 0.3)
    with pytest.raises(LedgerIntegrityError, match="names no index run"):
        grant_role("dana", "developer", model="m", actor=ADMIN)


def test_entries_verify_across_key_rotation(store, key, monkeypatch, tmp_path):
    version = _logged(monkeypatch)
    _roles()
    sign_off("credit", version, actor=VAL)
    assert shapgov.approve("credit", version, actor=APP).approved
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", "n" * 32)  # rotated
    problems = read_chain(mlflow.MlflowClient()).problems
    assert problems and "which is not held" in problems[0]
    old = tmp_path / "old-keys"
    old.write_text(KEY + "\n")
    monkeypatch.setenv("SHAPGOV_APPROVAL_OLD_KEYS_FILE", str(old))
    assert read_chain(mlflow.MlflowClient()).intact
    assert verify_version("credit", version).verified
    close = add_finding(
        "credit", version, severity="Low", title="After rotation", text="x", owner="dana",
        due="2027-01-31", actor=VAL,
    )  # fmt: skip
    chain = read_chain(mlflow.MlflowClient())
    assert chain.intact and {e.key_id for e in chain.entries} == {
        e.key_id for e in chain.entries if e.seq < int(close.id[1:])
    } | {chain.entries[-1].key_id}


def test_the_command_line_loop_with_exit_codes(store, key, monkeypatch):
    from click.testing import CliRunner

    from shapgov.cli import main

    version = str(_logged(monkeypatch))
    runner = CliRunner()

    def cli(*args, who=None):
        line = [*args, "--tracking-uri", store] + (["--as", who] if who else [])
        return runner.invoke(main, line)

    for user, role in (("dana", "developer"), ("victor", "validator"), ("ada", "approver")):
        ran = cli(
            "roles", "grant", "--user", user, "--role", role, "--model", "credit", who="admin"
        )
        assert ran.exit_code == 0 and f"{role} granted to {user} on credit" in ran.output
    refused = cli("approve", "credit", version, who="dana")
    assert refused.exit_code == 1 and "needs the approver role" in refused.output
    added = cli(
        "finding", "add", "credit", version, "--severity", "High", "--title", "Leakage",
        "--text", "Check the date column.", "--owner", "dana", "--due", "2027-01-31",
        who="victor",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    finding_id = added.output.split()[1]
    blocked = cli("approve", "credit", version, who="ada")
    assert blocked.exit_code == 1 and "no validator's sign-off" in blocked.output
    assert cli("finding", "answer", "credit", version, finding_id, "--text", "Dropped.",
               who="dana").exit_code == 0  # fmt: skip
    assert cli("finding", "close", "credit", version, finding_id, who="victor").exit_code == 0
    assert cli("signoff", "credit", version, who="victor").exit_code == 0
    shown = cli("review", "credit", version)
    assert shown.exit_code == 0 and f"credit version {version}: ready" in shown.output
    assert "answer by dana: Dropped." in shown.output
    approved = cli("approve", "credit", version, who="ada")
    assert approved.exit_code == 0 and "approved" in approved.output
    assert cli("verify", "credit", version).exit_code == 0
    assert "the ledger verifies: 8 entries" in cli("ledger", "verify").output
    bad = cli("finding", "add", "credit", version, "--severity", "High", "--title", "x",
              "--text", "y", "--owner", "dana", "--due", "soon", who="victor")  # fmt: skip
    assert bad.exit_code == 2 and "not an ISO date" in bad.output
    anonymous = runner.invoke(main, ["signoff", "credit", version, "--tracking-uri", store])
    assert anonymous.exit_code == 2 and "SHAPGOV_USER" in anonymous.output
    rejected = cli("reject", "credit", version, "--reason", "Policy changed.", who="ada")
    assert rejected.exit_code == 0 and "rejected by the reviewer: Policy changed." in (
        rejected.output
    )
    assert cli("verify", "credit", version).exit_code == 1  # rejected, not approved
    client = mlflow.MlflowClient()
    client.delete_run(_entry_run(client, 5))
    broken = cli("ledger", "verify")
    assert broken.exit_code == 1 and "entry 5 was deleted" in broken.output
