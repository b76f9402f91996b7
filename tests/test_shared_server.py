"""The audit trail on a shared tracking server: a real PostgreSQL cluster started here,
``mlflow server`` on it with MLflow's basic-auth app, users with READ, EDIT and MANAGE,
and clients in processes of their own that write, approve, die and lose their server.

What must hold: a verdict is a verdict only when signed by the approval key; a READ user
cannot approve; an EDIT user's hand-set tags are caught; under concurrent writers and
approvers every set is whole or absent, every verdict verifies and the alias never names
a version whose set fails; a writer killed mid-upload leaves a set approval rejects, and
its retry needs no cleanup; a server restart ends each client in a finished set or a
typed error that says to retry, and nothing half-written is approved.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from shared_jobs import USERS, blueprint, client_env, one_set
from shared_server import PostgresCluster, TrackingServer, postgres_bin

import shapgov
from shapgov.cli import main
from shapgov.errors import TrackingPermissionError, TrackingUnavailableError
from shapgov.mlflow.approval import check_run
from shapgov.mlflow.signing import verify_version

HERE = Path(__file__).parent

if postgres_bin() is None:  # .ci/run installs Debian's postgresql, so CI never skips
    if os.environ.get("CI"):
        raise RuntimeError("CI must have a PostgreSQL server: .ci/run installs postgresql")
    pytest.skip("no PostgreSQL server here: apt-get install postgresql", allow_module_level=True)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    cluster = PostgresCluster().start()
    try:
        server = TrackingServer(cluster, tmp_path_factory.mktemp("shared"), workers=2).start()
        try:
            for user, password in USERS.items():
                server.create_user(user, password)
            yield server
        finally:
            server.stop()
    finally:
        cluster.stop()


@pytest.fixture
def as_user(shared, monkeypatch):
    """``as_user(name, key=False)``: this process is now that client of the server."""

    def switch(user: str, *, key: bool = False) -> MlflowClient:
        for name, value in client_env(shared.url, user, key=key).items():
            monkeypatch.setenv(name, value)
        mlflow.set_tracking_uri(shared.url)
        mlflow.set_registry_uri(shared.url)
        return MlflowClient()

    yield switch
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def _experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def _model(shared: TrackingServer, client: MlflowClient, name: str) -> None:
    """A registered model owned by the writer, EDIT for the editor, MANAGE for the
    approval service (it moves and withdraws aliases); everyone else has READ."""
    client.create_registered_model(name)
    shared.grant_model(name, "approver", "MANAGE")
    shared.grant_model(name, "editor", "EDIT")


def _register(client: MlflowClient, name: str, run_id: str) -> str:
    source = f"runs:/{run_id}/shapgov"
    return client.create_model_version(name, source, run_id=run_id).version


def _set_dir(shared: TrackingServer, run_id: str) -> Path:
    found = list(shared.artifacts.glob(f"*/{run_id}/artifacts/shapgov"))
    return found[0] if found else shared.artifacts / "none" / run_id


def whole(folder: Path) -> bool:
    """An independent check of a set on the server's disk: its manifest is there and
    every file it lists is there with that SHA-256."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return False
    listed = json.loads(manifest.read_text())["artifacts"]
    return all(
        (folder / n).exists() and hashlib.sha256((folder / n).read_bytes()).hexdigest() == d
        for n, d in listed.items()
    )


def _logged(shared: TrackingServer, as_user, name: str) -> tuple[MlflowClient, str]:
    """As the writer: a run with a whole set in experiment ``name``, and registered model
    ``name`` (see :func:`_model`); returns the writer's client and the run id."""
    client = as_user("writer")
    model, X, background = blueprint()
    mlflow.set_experiment(experiment_id=_experiment(client, name))
    with mlflow.start_run() as run:
        shapgov.mlflow.explain_and_log(model, X, background=background, analyses=False)
    _model(shared, client, name)
    return client, run.info.run_id


def _cli(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def test_read_users_cannot_approve_and_hand_set_verdicts_do_not_verify(shared, as_user, tmp_path):
    client, run_id = _logged(shared, as_user, "perm")
    model, X, background = blueprint()
    v1, v2, v3 = (_register(client, "perm", run_id) for _ in range(3))

    # READ: refused, typed, exit 1, and nothing recorded
    reader = client_env(shared.url, "reader", key=True)
    refused = _cli(["approve", "perm", v1, "--alias", "champion"], reader)
    assert refused.exit_code == 1, refused.output
    assert "needs EDIT" in refused.output and "'reader'" in refused.output
    assert not any(k.startswith("shapgov.") for k in client.get_model_version("perm", v1).tags)

    # the approval service (MANAGE, holds the key): approved, signed, verifies
    approver = client_env(shared.url, "approver", key=True)
    approved = _cli(["approve", "perm", v1, "--alias", "champion"], approver)
    assert approved.exit_code == 0, approved.output
    checked = _cli(["verify", "perm", v1], reader)
    assert checked.exit_code == 0 and "(approver approver)" in checked.output
    assert client.get_model_version_by_alias("perm", "champion").version == v1

    # EDIT: a verdict copied from v1, and one typed by hand, do not verify
    editor = as_user("editor")
    for name, value in client.get_model_version("perm", v1).tags.items():
        editor.set_model_version_tag("perm", v2, name, value)
    editor.set_model_version_tag("perm", v3, "shapgov.approval", "approved")
    for version, why in ((v2, "signature does not match"), (v3, "not signed")):
        caught = _cli(["verify", "perm", version], reader)
        assert caught.exit_code == 1 and why in caught.output, caught.output
    # a detail of a real verdict edited by hand
    editor.set_model_version_tag("perm", v1, "shapgov.approval.reasons", "looked fine")
    assert _cli(["verify", "perm", v1], reader).exit_code == 1
    assert not verify_version("perm", v1).verified  # (as the editor, who holds no key)

    # the report names the approver and says whether the signature verifies here
    as_user("approver", key=True)
    assert shapgov.approve("perm", v1).approved  # re-approved: verifies again
    out = tmp_path / "r.html"
    with pytest.raises(TrackingPermissionError, match="needs EDIT on the run's experiment"):
        shapgov.report(model="perm", version=v1, out=out)  # READ on the writer's run
    page = shapgov.report(model="perm", version=v1, out=out, log=False).read_text()
    assert "Approved by</th><td>approver" in page and "verified</span> HMAC-SHA256" in page
    as_user("reader", key=True)
    assert verify_version("perm", v1).verified  # the report went beside the set

    # a set changed after approval: the verdict no longer verifies
    as_user("writer")
    shapgov.mlflow.explain_and_log(
        model, X.iloc[:20], run_id=run_id, background=background, analyses=False
    )
    as_user("reader", key=True)
    assert "changed after" in " ".join(verify_version("perm", v1).reasons)
    as_user("approver", key=True)
    page = shapgov.report(model="perm", version=v1, out=out, log=False).read_text()
    assert "not verified</span> the set&#39;s manifest.json changed after" in page


def test_an_edit_only_service_cannot_withdraw_an_alias_and_says_so(shared, as_user, tmp_path):
    client, run_id = _logged(shared, as_user, "edit-only")
    version = _register(client, "edit-only", run_id)
    # the approver signs in through ~/.mlflow/credentials, not the environment
    home = tmp_path / "home"
    (home / ".mlflow").mkdir(parents=True)
    (home / ".mlflow" / "credentials").write_text(
        f"[mlflow]\nmlflow_tracking_username = editor\n"
        f"mlflow_tracking_password = {USERS['editor']}\n"
    )
    env = client_env(shared.url, "editor", key=True)
    env.update(HOME=str(home), MLFLOW_TRACKING_USERNAME="", MLFLOW_TRACKING_PASSWORD="")
    # the key alone is not enough: the ledger belongs to the approval service
    as_user("approver", key=True)
    shapgov.approve("edit-only", version)  # the service's ledger exists
    stolen = _cli(["approve", "edit-only", version], env)
    assert stolen.exit_code == 1 and "refused user 'editor' a record in the approval ledger" in (
        stolen.output
    )
    assert "no verdict on edit-only version 1 was recorded" in stolen.output
    # the ledger is written first: the refused approval left the service's verdict as it was
    standing = verify_version("edit-only", version)
    assert standing.verified and standing.approver == "approver"
    # an EDIT-only approval service with a ledger of its own
    env["SHAPGOV_APPROVAL_LEDGER"] = "edit-only-ledger"
    approved = _cli(["approve", "edit-only", version, "--alias", "champion"], env)
    assert approved.exit_code == 0, approved.output  # EDIT may set an alias
    tags = client.get_model_version("edit-only", version).tags
    assert tags["shapgov.approval.approver"] == "editor"  # the user MLflow signed in as
    rejected = _cli(
        ["approve", "edit-only", version, "--alias", "champion", "--max-impact-drift", "0.1"], env
    )
    assert rejected.exit_code == 1
    assert "rejection of edit-only version 1 is recorded" in rejected.output
    assert "'champion' still names this rejected version" in rejected.output
    assert client.get_model_version("edit-only", version).tags["shapgov.approval"] == "rejected"


def _round_robin(shared, as_user, rounds: int, writers: int = 8, approvers: int = 2):
    """``writers`` processes explain and log into new runs while ``approvers`` processes
    approve one version at once, ``rounds`` times; returns the counts."""
    client = as_user("writer")
    model_name = f"load-{rounds}"
    experiment = _experiment(client, model_name)
    _model(shared, client, model_name)
    model, X, background = blueprint()
    mlflow.set_experiment(experiment_id=experiment)
    with mlflow.start_run() as first:
        shapgov.mlflow.explain_and_log(model, X, background=background, analyses=False)
    ctx = multiprocessing.get_context("spawn")
    parties = writers + approvers + 1
    barrier, queue = ctx.Barrier(parties), ctx.Queue()
    versions = [ctx.Queue() for _ in range(approvers)]
    from shared_jobs import approver, writer

    approving = client_env(shared.url, "approver", key=True)

    procs = [
        ctx.Process(
            target=writer,
            args=(i, client_env(shared.url, "writer"), experiment, rounds, barrier, queue),
        )
        for i in range(writers)
    ] + [
        ctx.Process(
            target=approver,
            args=(i, approving, model_name, rounds, barrier, versions[i], queue),
        )
        for i in range(approvers)
    ]
    for p in procs:
        p.start()
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    source = first.info.run_id
    try:
        for r in range(rounds):
            version = _register(client, model_name, source)
            for q in versions:
                q.put(version)
            barrier.wait(timeout=600)  # go
            barrier.wait(timeout=600)  # all done
            reports = [queue.get(timeout=60) for _ in range(writers + approvers)]
            written = [d for role, _, _, o, d in reports if role == "writer" and o == "written"]
            failed = [(o, d) for role, _, _, o, d in reports if o not in ("written", "approved")]
            assert not failed, failed
            for run_id in written:  # every set whole (none was interrupted here)
                counts["sets written"] += 1
                counts["sets lost"] += not whole(_set_dir(shared, run_id))
            for role, _, _, outcome, detail in reports:
                if role == "approver":
                    writes, why = detail.split(" ", 1)
                    counts[f"verdicts {outcome}"] += 1
                    counts["verdicts rewritten after an interleaving"] += int(writes) > 1
                    if outcome != "approved":
                        reasons[why] += 1
            as_user("reader", key=True)
            verdict = verify_version(model_name, version)
            assert verdict.verified, verdict.reasons
            counts["verdicts verified"] += 1
            alias = client.get_model_version_by_alias(model_name, "champion")
            assert verify_version(model_name, alias.version).verified
            assert check_run(alias.run_id).approved
            client = as_user("writer")
            source = written[r % len(written)]  # next round approves a set of this one
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    print(f"\n{rounds} rounds: {dict(counts)}; rejections by reason: {dict(reasons)}")
    return counts


@pytest.mark.parametrize(
    ("rounds", "writers"),
    [
        pytest.param(1, 2, id="1-round"),  # the short variant of the default run: 2 writers
        pytest.param(20, 8, id="20-rounds", marks=pytest.mark.load),
    ],
)
def test_concurrent_writers_and_approvers_leave_only_whole_sets_and_verified_verdicts(
    shared, as_user, rounds, writers
):
    counts = _round_robin(shared, as_user, rounds, writers=writers)
    assert counts["sets written"] == writers * rounds and counts["sets lost"] == 0
    assert counts["verdicts approved"] == 2 * rounds
    assert counts["verdicts verified"] == rounds


def test_a_writer_killed_mid_upload_leaves_a_set_approval_rejects_and_a_retry_needs_no_cleanup(
    shared, as_user
):
    client = as_user("writer")
    experiment = _experiment(client, "killed")
    _model(shared, client, "killed")
    env = dict(os.environ, PYTHONPATH=str(HERE), **client_env(shared.url, "writer"))
    for _ in range(3):  # the kill must land between the first file and the manifest
        run_id = client.create_run(experiment).info.run_id
        folder = _set_dir(shared, run_id)
        job = subprocess.Popen(
            [sys.executable, str(HERE / "shared_jobs.py"), run_id, "2000"],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert job.stdout.readline().strip() == "ready"
        deadline = time.time() + 300
        while time.time() < deadline and job.poll() is None:
            folder = _set_dir(shared, run_id)
            if folder.is_dir() and any(folder.iterdir()):
                break
            time.sleep(0.005)
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        # a kill that landed before the server kept any file (a loaded machine) tries again
        if folder.is_dir() and any(folder.iterdir()) and not (folder / "manifest.json").exists():
            break
    else:
        pytest.fail("no kill landed between the first file and the manifest (3 tries)")
    uploaded = sorted(p.name for p in folder.iterdir())
    assert uploaded and "manifest.json" not in uploaded
    version = _register(client, "killed", run_id)
    as_user("approver", key=True)
    rejected = shapgov.approve("killed", version, alias="champion")
    assert not rejected.approved
    assert rejected.reasons == ["the artifact set has no manifest (incomplete upload)"]

    # the retry: the same call into the same run, over the files the killed one left
    retry = subprocess.run(
        [sys.executable, str(HERE / "shared_jobs.py"), run_id, "2000"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert whole(_set_dir(shared, run_id))
    approved = shapgov.approve("killed", version, alias="champion")
    assert approved.approved, approved.reasons
    assert verify_version("killed", version).verified
    print(f"\nkilled after {len(uploaded)} of the set's files; the retry approved")


def test_a_server_restart_ends_each_writer_whole_or_with_a_typed_retryable_error(shared, as_user):
    client = as_user("writer")
    model, X, background = blueprint(800)
    experiment = _experiment(client, "restart")
    _model(shared, client, "restart")
    # patient clients (MLflow's 7 retries, backoff from 1 s doubling) ride the restart
    # out; impatient ones (one retry, no backoff) meet it
    patient = client_env(shared.url, "writer", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")
    impatient = client_env(
        shared.url, "writer", MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0", MLFLOW_HTTP_REQUEST_TIMEOUT="20",
    )  # fmt: skip
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    runs = [client.create_run(experiment).info.run_id for _ in range(2)]
    envs = [patient, impatient]
    jobs = [
        ctx.Process(target=one_set, args=(env, rid, 800, queue))
        for env, rid in zip(envs, runs, strict=True)
    ]
    for job in jobs:
        job.start()
    deadline = time.time() + 300  # restart as the first upload begins
    while time.time() < deadline and not any(_set_dir(shared, r).is_dir() for r in runs):
        time.sleep(0.01)
    shared.restart()
    outcomes = sorted(queue.get(timeout=600) for _ in jobs)
    for job in jobs:
        job.join(timeout=60)
    by_run = {detail.split("\n")[0]: outcome for _, _, _, outcome, detail in outcomes}
    counts = Counter(by_run.values())
    expected = ("written", "TrackingUnavailableError")
    unexpected = [(o, d) for _, _, _, o, d in outcomes if o not in expected]
    assert not unexpected, unexpected
    for _, _, _, outcome, detail in outcomes:
        if outcome == "TrackingUnavailableError":
            assert "did not answer" in detail and "call it again with run_id=" in detail
    assert all(by_run[r] == "written" for r, env in zip(runs, envs, strict=True) if env is patient)

    as_user("approver", key=True)
    verdicts: Counter[str] = Counter()
    for run_id in runs:
        version = _register(client, "restart", run_id)
        result = shapgov.approve("restart", version)
        verdicts["approved" if result.approved else result.reasons[0][:60]] += 1
        # nothing half-written is approved: an approved set is whole on the server's disk
        assert not result.approved or whole(_set_dir(shared, run_id))
        # a finished client's set is approved (a failed one's may be too, when only the
        # metrics after its manifest were lost: it is whole)
        assert result.approved or by_run[run_id] != "written"
        if not result.approved:  # the retry, same call, same run: now whole and approved
            as_user("writer")
            shapgov.mlflow.explain_and_log(
                model, X, run_id=run_id, background=background, analyses=False
            )
            as_user("approver", key=True)
            assert shapgov.approve("restart", version).approved
            verdicts["approved after a retry"] += 1
    print(f"\nrestart: clients {dict(counts)}; verdicts {dict(verdicts)}; lost 0")
    assert sum(counts.values()) == len(runs)


def test_typed_errors_name_the_retry(tmp_path, monkeypatch):
    """No server at all: a typed error that is also a ConnectionError, and says to retry."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri("http://127.0.0.1:9")
    mlflow.set_registry_uri("http://127.0.0.1:9")
    try:
        with pytest.raises(TrackingUnavailableError, match="approval again") as info:
            shapgov.approve("m", 1)
        assert isinstance(info.value, ConnectionError)
        with pytest.raises(TrackingUnavailableError, match="checking run abc"):
            check_run("abc")
        model, X, background = blueprint()
        with pytest.raises(TrackingUnavailableError, match="run_id='abc'"):
            shapgov.mlflow.explain_and_log(model, X, run_id="abc", background=background)
        down = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
        for args in (["verify", "m", "1"], ["report", "--run-id", "abc"], ["approve", "m", "1"]):
            ran = _cli(args, down)
            assert ran.exit_code == 75 and "did not answer" in ran.output, (args, ran.output)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
