"""Signed verdicts: a verdict verifies only when the approval key signed it and the set is
still the one approved (a hand-set tag, a copied verdict, a changed set all fail)."""

from __future__ import annotations

import mlflow
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shapgov
import shapgov.mlflow
from shapgov.cli import main
from shapgov.errors import InputError, UnsignedVerdictWarning
from shapgov.mlflow.signing import SIGNATURE_TAG, verify_version

KEY = "k" * 32
OTHER = "o" * 32


def _version(name="signed"):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(
            model, X.iloc[:40], background=X.iloc[100:200], analyses=False
        )
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return mlflow.register_model(info.model_uri, name), run.info.run_id, model, X


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    monkeypatch.setenv("SHAPGOV_APPROVER", "risk-reviewer")
    monkeypatch.delenv("SHAPGOV_APPROVAL_OLD_KEYS_FILE", raising=False)


def test_a_signed_verdict_verifies_and_names_its_approver(store, key):
    mv, *_ = _version()
    assert shapgov.approve("signed", mv.version).approved
    result = verify_version("signed", mv.version)
    assert result.verified, result.reasons
    assert result.verdict == "approved" and result.approver == "risk-reviewer"
    ran = CliRunner().invoke(main, ["verify", "signed", str(mv.version), "--tracking-uri", store])
    assert ran.exit_code == 0 and "risk-reviewer" in ran.output
    with pytest.raises(InputError, match="register it first"):  # not a raw MlflowException
        shapgov.approve("signed", 99)


def test_hand_set_and_copied_verdicts_do_not_verify(store, key):
    mv, *_ = _version()
    assert shapgov.approve("signed", mv.version).approved
    client = mlflow.MlflowClient()
    second = mlflow.register_model(f"models:/signed/{mv.version}", "signed")
    client.set_model_version_tag("signed", second.version, "shapgov.approval", "approved")
    hand = verify_version("signed", second.version)
    assert not hand.verified and "not signed" in hand.reasons[0]
    for tag, value in client.get_model_version("signed", mv.version).tags.items():
        if tag.startswith("shapgov.approval"):  # the whole signed verdict, copied
            client.set_model_version_tag("signed", second.version, tag, value)
    copied = verify_version("signed", second.version)
    assert not copied.verified and "does not match" in copied.reasons[0]
    ran = CliRunner().invoke(
        main, ["verify", "signed", str(second.version), "--tracking-uri", store]
    )
    assert ran.exit_code == 1 and "NOT verified" in ran.output
    # a reason edited by hand breaks the signature too
    client.set_model_version_tag("signed", mv.version, "shapgov.approval.reasons", "fine")
    assert not verify_version("signed", mv.version).verified


def test_a_set_changed_after_approval_does_not_verify(store, key):
    mv, run_id, model, X = _version()
    assert shapgov.approve("signed", mv.version).approved
    shapgov.mlflow.explain_and_log(
        model, X.iloc[:30], background=X.iloc[100:200], run_id=run_id, analyses=False
    )
    result = verify_version("signed", mv.version)
    assert not result.verified and any("manifest.json changed" in r for r in result.reasons)


def test_unsigned_verdicts_and_key_rotation(store, monkeypatch, tmp_path):
    monkeypatch.delenv("SHAPGOV_APPROVAL_KEY", raising=False)
    monkeypatch.delenv("SHAPGOV_APPROVAL_KEY_FILE", raising=False)
    mv, *_ = _version()
    with pytest.warns(UnsignedVerdictWarning, match="not signed"):
        assert shapgov.approve("signed", mv.version).approved
    tags = mlflow.MlflowClient().get_model_version("signed", mv.version).tags
    assert SIGNATURE_TAG not in tags
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", KEY)
    assert "not signed" in verify_version("signed", mv.version).reasons[0]
    assert shapgov.approve("signed", mv.version).approved  # signed with KEY now
    monkeypatch.setenv("SHAPGOV_APPROVAL_KEY", OTHER)  # rotated
    assert "not held" in verify_version("signed", mv.version).reasons[0]
    old = tmp_path / "old-keys"
    old.write_text(KEY + "\n")
    monkeypatch.setenv("SHAPGOV_APPROVAL_OLD_KEYS_FILE", str(old))
    assert verify_version("signed", mv.version).verified


def test_an_alias_moves_only_on_a_stored_verdict_that_verifies(store, key):
    from shapgov.mlflow.approval import check_run
    from shapgov.mlflow.verdict_writes import move_alias as _move_alias

    mv, run_id, *_ = _version()
    client = mlflow.MlflowClient()
    result = check_run(run_id)
    assert result.approved
    client.set_model_version_tag("signed", mv.version, "shapgov.approval", "approved")
    client.set_model_version_tag(
        "signed", mv.version, "shapgov.approval.manifest_sha256", result.manifest_sha256
    )
    stored = client.get_model_version("signed", mv.version).tags  # approved, but unsigned
    _move_alias(client, "signed", str(mv.version), "champion", result, stored)
    assert "champion" not in client.get_model_version("signed", mv.version).aliases
    # signed by this process's key: the alias moves
    approval = shapgov.approve("signed", mv.version, alias="champion")
    assert approval.approved and approval.writes == 1
    assert client.get_model_version_by_alias("signed", "champion").version == mv.version


def test_a_rejection_withdraws_the_alias_from_its_version(store, key):
    from shapgov.mlflow.approval import check_run

    mv, run_id, *_ = _version()
    client = mlflow.MlflowClient()
    assert shapgov.approve("signed", mv.version, alias="champion").approved
    # the set altered on the store after approval: the next check rejects it ...
    root = mlflow.get_run(run_id).info.artifact_uri.removeprefix("file://")
    with open(f"{root}/shapgov/feature_impact.json", "a") as f:
        f.write(" ")
    assert not check_run(run_id).approved
    changed = verify_version("signed", mv.version)  # the signed hashes still match ...
    assert not changed.verified  # ... but a file the manifest lists does not
    assert changed.reasons == ["feature_impact.json does not match its manifest hash (changed)"]
    rejected = shapgov.approve("signed", mv.version, alias="champion")
    assert not rejected.approved and "feature_impact.json" in " ".join(rejected.reasons)
    # ... and the alias no longer names the version
    assert "champion" not in client.get_model_version("signed", mv.version).aliases


def test_an_older_approval_written_back_over_a_later_rejection_does_not_verify(store, key):
    mv, *_ = _version()
    client = mlflow.MlflowClient()
    assert shapgov.approve("signed", mv.version).approved
    assert verify_version("signed", mv.version).verified
    saved = {
        k: v
        for k, v in client.get_model_version("signed", mv.version).tags.items()
        if k.startswith("shapgov.approval")
    }
    # a rule the set cannot meet (it holds no explanations over time): a signed rejection
    assert not shapgov.approve("signed", mv.version, max_impact_drift=0.1).approved
    refused = verify_version("signed", mv.version)
    assert not refused.verified and refused.reasons == ["the verdict is 'rejected', not approved"]
    ran = CliRunner().invoke(main, ["verify", "signed", str(mv.version), "--tracking-uri", store])
    assert ran.exit_code == 1
    for name, value in saved.items():  # the old approval, written back by hand
        client.set_model_version_tag("signed", mv.version, name, value)
    replayed = verify_version("signed", mv.version)
    assert not replayed.verified
    assert replayed.reasons[0].startswith("a later verdict (rejected at ")


def test_serving_where_the_key_is_held_needs_a_verdict_that_verifies(store, key):
    from shapgov.errors import UnapprovedModelError
    from shapgov.mlflow.serving import log_explaining_model

    mv, run_id, _, X = _version()
    client = mlflow.MlflowClient()
    client.set_model_version_tag("signed", mv.version, "shapgov.approval", "approved")
    client.set_model_version_tag(  # a hand-set verdict naming the right set
        "signed",
        mv.version,
        "shapgov.approval.manifest_sha256",
        shapgov.mlflow.approval.check_run(run_id).manifest_sha256,
    )
    with mlflow.start_run(), pytest.raises(UnapprovedModelError, match="not signed"):
        log_explaining_model(f"models:/signed/{mv.version}", background=X.iloc[100:200])
    assert shapgov.approve("signed", mv.version).approved
    with mlflow.start_run():
        info = log_explaining_model(f"models:/signed/{mv.version}", background=X.iloc[100:200])
    assert info.model_uri


def test_an_approval_that_loses_the_race_to_create_the_ledger_reads_it_back(
    store, key, monkeypatch
):
    """Two first approvals at once both find no ledger and both create it; the store lets
    one in (CI's 20-round load test on PostgreSQL once failed here with an IntegrityError).
    Here the other approval service creates it, through its own client, between this
    one's look-up and its creation (and, as the creator, names its index run): the verdict
    still lands, in the one ledger."""
    from shapgov.review import ledger
    from shapgov.review.ledger import read_chain

    other = mlflow.MlflowClient()
    created = []

    class LateClient(mlflow.MlflowClient):
        def create_experiment(self, name, *args, **kwargs):
            created.append(name)
            made, mine = ledger._experiment(other, create=True)  # the other service first
            assert mine
            ledger._index_run(other, made, created=True)
            return super().create_experiment(name, *args, **kwargs)  # refused: already there

    mv, *_ = _version()
    monkeypatch.setenv("SHAPGOV_APPROVAL_LEDGER", "race-ledger")  # a ledger nobody made yet
    assert shapgov.approve("signed", mv.version, client=LateClient()).approved
    assert created == ["race-ledger"]  # refused as already there, read back
    chain = read_chain(mlflow.MlflowClient())
    assert chain.intact, chain.problems
    assert [(e.kind, e.version) for e in chain.entries] == [("verdict", str(mv.version))]
    assert verify_version("signed", mv.version).verified
