"""The review page as a bank runs it: ``mlflow server --app-name shapgov`` on a real
PostgreSQL cluster started here, MLflow's basic-auth app signing users in, and the system's
Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium; nothing
downloads a browser) clicking through a whole review.

What must hold: the developer who logged a set cannot approve it; an approval waits for a
validator's sign-off by another user and for every High finding to close; a READ-only
user sees the page and no action; what users typed shows as text; a cross-site form post
is refused; the report runs no script in the page's origin; two approvers and two
validators acting at once leave one valid chain; deleting one ledger run by hand makes
``shapgov verify`` fail and name the gap.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import threading
from pathlib import Path

import mlflow
import pytest
import requests
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from shared_jobs import KEY
from shared_server import ADMIN, PostgresCluster, TrackingServer, postgres_bin

import shapgov.mlflow
from shapgov.cli import main
from shapgov.review.ledger import read_chain

if postgres_bin() is None:  # .ci/run installs Debian's postgresql, so CI never skips
    if os.environ.get("CI"):
        raise RuntimeError("CI must have a PostgreSQL server: .ci/run installs postgresql")
    pytest.skip("no PostgreSQL server here: apt-get install postgresql", allow_module_level=True)

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
    if os.environ.get("CI"):
        raise RuntimeError("CI must have chromium and chromium-driver: .ci/run installs them")
    pytest.skip("no system Chromium: apt-get install chromium chromium-driver",
                allow_module_level=True)  # fmt: skip

PEOPLE = {
    "dana": "dana-password-1234",  # developer (and approver of other models)
    "victor": "victor-password-1234",  # validator
    "vera": "vera-password-1234",  # validator
    "ada": "ada-password-1234",  # approver
    "bob": "bob-password-1234",  # approver
    "rita": "rita-password-1234",  # READ only: no role
}
MODEL = "credit-review"
SCRIPT_TITLE = "<script>document.title='pwned'</script>Leakage"
HTML_FEATURE = "<img src=x onerror=alert(1)>bmi"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The review server, its users, roles, and one logged, registered version."""
    cluster = PostgresCluster().start()
    try:
        server = TrackingServer(
            cluster, tmp_path_factory.mktemp("review"), workers=2, app_name="shapgov",
            env={"MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1],
                 "SHAPGOV_APPROVAL_KEY": KEY},
        ).start()  # fmt: skip
        try:
            for user, password in PEOPLE.items():
                server.create_user(user, password)
            with _signed_in(server, "dana"):
                version = _log_set(server)
            with _signed_in(server, *ADMIN):
                for user, role in (("dana", "developer"), ("dana", "approver"),
                                   ("victor", "validator"), ("vera", "validator"),
                                   ("ada", "approver"), ("bob", "approver")):  # fmt: skip
                    ran = _cli("roles", "grant", "--user", user, "--role", role, "--model", MODEL)
                    assert ran.exit_code == 0, ran.output
            server.version = version
            yield server
        finally:
            server.stop()
    finally:
        cluster.stop()


class _signed_in:
    """This process is a client of the server as ``user`` (holding the approval key)."""

    def __init__(self, server, user, password=None):
        self.env = {
            "MLFLOW_TRACKING_URI": server.url,
            "MLFLOW_REGISTRY_URI": server.url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": password or PEOPLE[user],
            "SHAPGOV_APPROVAL_KEY": KEY,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        mlflow.set_tracking_uri(self.env["MLFLOW_TRACKING_URI"])
        mlflow.set_registry_uri(self.env["MLFLOW_TRACKING_URI"])
        return MlflowClient()

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def _cli(*args):
    return CliRunner().invoke(main, [*args, "--tracking-uri", os.environ["MLFLOW_TRACKING_URI"]])


def _log_set(server, name=MODEL):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.rename(columns={"bmi": HTML_FEATURE})  # a feature name a user typed, with HTML
    model = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    mlflow.set_experiment("review-page")
    with mlflow.start_run():
        shapgov.mlflow.explain_and_log(model, X.iloc[:30], background=X.iloc[::25])
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    return str(mlflow.register_model(info.model_uri, name).version)


def _browser(user, password=None):
    """Headless system Chromium signed in as ``user`` (basic auth on every request)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1300,1800"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    token = base64.b64encode(f"{user}:{password or PEOPLE[user]}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
    )
    return driver


def _open(driver, server, version):
    from urllib.parse import urlencode

    driver.get(f"{server.url}/shapgov/version?{urlencode({'model': MODEL, 'version': version})}")
    return driver


def _submit(driver, form_id, **fields):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = driver.find_element(By.ID, form_id)
    for name, value in fields.items():
        element = form.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_visible_text(value)
        elif element.get_attribute("type") == "date":
            driver.execute_script("arguments[0].value = arguments[1]", element, value)
        else:
            element.clear()
            element.send_keys(value)
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    form.find_element(By.TAG_NAME, "button").click()
    WebDriverWait(driver, 120).until(expected_conditions.staleness_of(form))
    WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.ID, "state"))
    return _messages(driver)


def _messages(driver):
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".msg")]


def _state(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "state").text


def _shot(driver, name):
    out = Path(os.environ.get("SHAPGOV_SCREENSHOTS", "")) if os.environ.get(
        "SHAPGOV_SCREENSHOTS") else None  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out / f"{name}.png"))


def test_a_whole_review_in_the_browser(page):
    from selenium.webdriver.common.by import By

    version = page.version
    dana, victor, ada = _browser("dana"), _browser("victor"), _browser("ada")
    try:
        # the developer who logged the set cannot approve it, even holding the role
        said = _submit(_open(dana, page, version), "approve")
        assert any("dana logged the set" in m and "cannot approve it" in m for m in said), said
        # a validator records a High finding whose title holds a script: shown as text
        said = _submit(
            _open(victor, page, version), "add-finding", severity="High", title=SCRIPT_TITLE,
            owner="dana", due="2027-01-31", text="Check the <b>date</b> column.",
        )  # fmt: skip
        assert any("finding F" in m and "recorded" in m for m in said), said
        cell = victor.find_element(By.CSS_SELECTOR, "#findings td.title")
        assert cell.text == SCRIPT_TITLE and victor.title != "pwned"
        assert "&lt;script&gt;" in victor.page_source and _state(victor) == "findings open"
        finding = victor.find_element(By.CSS_SELECTOR, "#findings td").text
        _shot(victor, "1-finding-open")
        # the approver is refused while the High finding is open (and nothing signed off)
        said = _submit(_open(ada, page, version), "approve")
        assert any("ReviewRefusedError" in m for m in said), said
        # the owner answers; the validator closes it and signs off; the approver approves
        said = _submit(_open(dana, page, version), f"answer-{finding}", text="Dropped it.")
        assert any(f"finding {finding} answered" in m for m in said), said
        _open(victor, page, version)
        assert _submit(victor, f"close-{finding}", text="Verified.") == [
            f"finding {finding} closed"
        ]
        assert _submit(victor, "signoff", text="Validated.") == ["signed off"]
        assert _state(victor) == "ready"
        assert _submit(_open(ada, page, version), "approve") == ["approved"]
        assert _state(ada) == "approved"
        history = ada.find_element(By.CSS_SELECTOR, "#findings ul.history").text
        assert "finding by victor" in history and "answer by dana: Dropped it." in history
        _shot(ada, "2-approved")
        # the report is in a sandboxed frame, its HTML feature name escaped text
        frame = ada.find_element(By.CSS_SELECTOR, "iframe.report")
        assert frame.get_attribute("sandbox") == ""
        ada.switch_to.frame(frame)
        assert HTML_FEATURE in ada.find_element(By.TAG_NAME, "body").text
        ada.switch_to.default_content()
        _shot(ada, "3-report")
    finally:
        for driver in (dana, victor, ada):
            driver.quit()
    with _signed_in(page, "rita"):
        os.environ["SHAPGOV_APPROVAL_KEY"] = KEY
        verified = _cli("verify", MODEL, version)
        assert verified.exit_code == 0, verified.output
    # one ledger run deleted by hand: verify fails and names the gap
    with _signed_in(page, *ADMIN) as client:
        chain = read_chain(client)
        gone = next(e for e in chain.entries if e.kind == "signoff")
        client.delete_run(gone.run_id)
        try:
            broken = _cli("verify", MODEL, version)
            assert broken.exit_code == 1
            assert f"entry {gone.seq} was deleted (run {gone.run_id} is in the trash" in (
                broken.output
            )
        finally:
            client.restore_run(gone.run_id)
        assert _cli("verify", MODEL, version).exit_code == 0


def test_a_read_only_user_sees_the_review_and_no_action(page):
    from selenium.webdriver.common.by import By

    rita = _browser("rita")
    try:
        _open(rita, page, page.version)
        assert rita.find_element(By.ID, "no-actions").is_displayed()
        assert rita.find_elements(By.CSS_SELECTOR, "form.action") == []
        assert "signed in as rita" in rita.page_source
        _shot(rita, "4-read-only")
    finally:
        rita.quit()
    # no sign-in: the auth app's challenge
    assert requests.get(f"{page.url}/shapgov/", timeout=30).status_code == 401
    # identities come from the sign-in: a validator may neither grant roles nor act as another
    with _signed_in(page, "victor"):
        granted = _cli("roles", "grant", "--user", "rita", "--role", "approver")
        assert granted.exit_code == 1 and "victor is not an administrator" in granted.output
        posing = CliRunner().invoke(main, ["signoff", MODEL, page.version, "--as", "ada",
                                           "--tracking-uri", page.url])  # fmt: skip
        assert posing.exit_code == 2 and "signed in to the tracking server as 'victor'" in (
            posing.output
        )


def _session(server, user):
    """A signed-in session with the page's CSRF token (as a browser holds it)."""
    session = requests.Session()
    session.auth = (user, PEOPLE[user])
    html = session.get(
        f"{server.url}/shapgov/version", params={"model": MODEL, "version": server.version},
        timeout=60,
    ).text  # fmt: skip
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return session, token.group(1) if token else ""


def test_forged_and_cross_site_posts_are_refused(page):
    session, token = _session(page, "victor")
    form = {"model": MODEL, "version": page.version, "action": "finding", "severity": "Low",
            "title": "forged", "text": "x", "owner": "dana", "due": "2027-01-31"}  # fmt: skip
    with _signed_in(page, *ADMIN) as client:
        before = len(read_chain(client).entries)
    url = f"{page.url}/shapgov/act"
    assert session.post(url, data=form, timeout=60).status_code == 400  # no CSRF token
    assert session.post(url, data={**form, "csrf_token": "forged"}, timeout=60).status_code == 400
    cross = session.post(
        url, data={**form, "csrf_token": token}, timeout=60,
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )  # fmt: skip
    assert cross.status_code == 403
    with _signed_in(page, *ADMIN) as client:
        assert len(read_chain(client).entries) == before  # nothing recorded
    # the report: served as a sandbox, never as a page of this origin
    report = session.get(
        f"{page.url}/shapgov/report", params={"model": MODEL, "version": page.version},
        timeout=60,
    )  # fmt: skip
    assert report.headers["Content-Security-Policy"].startswith("sandbox;")
    assert "&lt;img src=x onerror=alert(1)&gt;bmi" in report.text
    assert "script-src" not in report.headers["Content-Security-Policy"]
    page_policy = session.get(f"{page.url}/shapgov/", timeout=60).headers
    assert "default-src 'none'" in page_policy["Content-Security-Policy"]


def test_two_approvers_and_two_validators_at_once_leave_one_chain(page):
    with _signed_in(page, "dana"):
        version = _log_set(page)  # a second version of the model
    sessions = {u: _session(page, u) for u in ("victor", "vera", "ada", "bob")}
    # a first sign-off, so the approvals can pass
    victor, token = sessions["victor"]
    data = {"model": MODEL, "version": version, "csrf_token": token}
    signed = victor.post(f"{page.url}/shapgov/act", data={**data, "action": "signoff"},
                         timeout=120)  # fmt: skip
    assert signed.ok
    results: dict[str, str] = {}
    start = threading.Barrier(4)

    def act(user, action, **extra):
        session, token = sessions[user]
        start.wait(timeout=60)
        response = session.post(
            f"{page.url}/shapgov/act", timeout=300,
            data={"model": MODEL, "version": version, "csrf_token": token, "action": action,
                  **extra},
        )  # fmt: skip
        found = re.findall(r'class="msg msg-(\w+)">([^<]*)<', response.text)
        results[user] = " ".join(f"{c}: {m}" for c, m in found) or str(response.status_code)

    threads = [
        threading.Thread(target=act, args=("ada", "approve")),
        threading.Thread(target=act, args=("bob", "approve")),
        threading.Thread(target=act, args=("victor", "signoff")),
        threading.Thread(target=act, args=("vera", "finding"), kwargs=dict(
            severity="Medium", title="Concurrent", text="x", owner="dana", due="2027-03-01")),
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert len(results) == 4, results
    for user, said in results.items():  # each acted, or got a typed refusal or conflict
        assert said.startswith(("done:", "refused:")), (user, said)
    with _signed_in(page, *ADMIN) as client:
        chain = read_chain(client)
    assert chain.intact, chain.problems
    assert [e.seq for e in chain.entries] == list(range(1, len(chain.entries) + 1))
    mine = [e for e in chain.entries if e.version == version and e.model == MODEL]
    assert sum(e.kind == "signoff" for e in mine) == 1 + results["victor"].startswith("done:")
    print("concurrent review actions:", results)
