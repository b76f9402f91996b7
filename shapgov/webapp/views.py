"""The review page's views, under ``/shapgov/``: the versions awaiting review, one
version's review (report, findings, sign-offs, verdicts, and the actions the signed-in
user's role allows), and the form posts that take those actions.

The views hold no rule of their own: every action calls the same Python API as the
command line (:mod:`shapgov.review.actions`, :func:`shapgov.approve`)
with the signed-in user as the actor, and a refusal is the API's own typed error, shown
on the page. Which forms are shown follows the user's roles only; the API decides.

Security: templates autoescape everything users typed (finding titles, answers, feature
names); each form carries a CSRF token (Flask-WTF, as MLflow's auth app sets it up) and a
post whose ``Origin`` or ``Sec-Fetch-Site`` says another site sent it is refused; the
compliance report is served with ``Content-Security-Policy: sandbox`` and shown in an
``<iframe sandbox>``, so none of its HTML runs in the page's origin; the page itself
runs no script (``script-src 'none'``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    request,
    url_for,
)

from shapgov.webapp.identity import can_read, signed_in

blueprint = Blueprint("shapgov_review", __name__, url_prefix="/shapgov")

#: The page's own policy: no script at all, forms only to itself, never framed.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: The report's policy: a sandbox (opaque origin, no script), its own inline CSS and
#: embedded figures only.
REPORT_POLICY = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
ACTIONS = ("finding", "answer", "close", "signoff", "approve", "reject")
MAX_VERSIONS = 200


def _client() -> Any:
    """The approval service's client: this very server (``SHAPGOV_REVIEW_TRACKING_URI``
    overrides), signed in with the service's own credentials from the server's
    environment; the actor of every action is the page's signed-in user."""
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("SHAPGOV_REVIEW_TRACKING_URI") or request.host_url.rstrip("/")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _render(template: str, **context: Any) -> Response:
    from importlib import resources

    import jinja2

    templates = resources.files("shapgov.reports")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda n: templates.joinpath(n).read_text("utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    css = templates.joinpath("review.css").read_text("utf-8")
    html = env.get_template(template).render(css=css, url_for=url_for, **context)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _me() -> Any:
    me = signed_in()
    if me is None:
        abort(401)
    return me


def _version_args() -> tuple[str, str]:
    source = request.form if request.method == "POST" else request.args
    model, version = source.get("model", ""), source.get("version", "")
    if not model or not version.isdigit():
        abort(400, "a model and a version number are needed")
    return model, version


def _manifest(client: Any, model: str, version: str) -> tuple[str | None, Any]:
    from shapgov.review.actions import set_of

    return set_of(client, model, version)


@blueprint.get("/")
def index() -> Response:
    """The versions the user may read, newest first, with their review state."""
    from shapgov.review.ledger import read_chain
    from shapgov.review.state import fold

    me = _me()
    client = _client()
    chain = read_chain(client)
    rows = []
    versions = client.search_model_versions(
        max_results=MAX_VERSIONS, order_by=["last_updated_timestamp DESC"]
    )
    for mv in versions:
        if not can_read(me, mv.name):
            continue
        manifest, _ = _manifest(client, mv.name, str(mv.version))
        state = fold(chain.entries, mv.name, str(mv.version))
        rows.append(
            {
                "model": mv.name,
                "version": str(mv.version),
                "state": state.standing(manifest),
                "open": len(state.open_findings()),
                "in_force": state.in_force,
            }
        )
    return _render("review_index.html.j2", me=me, rows=rows, problems=chain.problems)


@blueprint.get("/version")
def version_page() -> Response:
    """One version's review: state, report, findings and their history, sign-offs,
    verdicts, and the forms the user's roles allow."""
    from flask_wtf.csrf import generate_csrf

    from shapgov.review.actions import review_state

    me = _me()
    model, version = _version_args()
    if not can_read(me, model):
        abort(403, f"{me.name} may not read registered model {model}")
    client = _client()
    state, chain = review_state(model, version, client=client)
    manifest, author = _manifest(client, model, version)
    tags = dict(client.get_model_version(model, version).tags or {})
    return _render(
        "review_version.html.j2",
        me=me,
        model=model,
        version=version,
        state=state,
        standing=state.standing(manifest),
        roles=state.roles_of(me.name),
        author=author,
        manifest=manifest,
        verdict=tags.get("shapgov.approval"),
        verdict_reasons=tags.get("shapgov.approval.reasons"),
        problems=chain.problems,
        messages=get_flashed_messages(with_categories=True),
        csrf_token=generate_csrf(),
    )


@blueprint.get("/report")
def report() -> Response:
    """The set's compliance report, sandboxed (see the module)."""
    from shapgov.sinks.compliance import REPORT

    me = _me()
    model, version = _version_args()
    if not can_read(me, model):
        abort(403)
    client = _client()
    run_id = client.get_model_version(model, version).run_id
    with tempfile.TemporaryDirectory(prefix="shapgov-page-") as tmp:
        try:
            path = Path(client.download_artifacts(run_id, f"shapgov/{REPORT}", tmp))
            html = path.read_bytes()
        except Exception:
            html = b"<p>This version's set has no compliance report.</p>"
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _same_site() -> bool:
    """Whether a form post came from this site (``Sec-Fetch-Site`` and ``Origin``, as
    browsers send them; a post with neither is judged by its CSRF token alone)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin in (None, "null") or origin.rstrip("/") == request.host_url.rstrip("/")


@blueprint.post("/act")
def act() -> Response:
    """Take one action through the Python API, as the signed-in user; a refusal is shown
    on the version's page and nothing is recorded."""
    from shapgov.errors import ShapgovError

    me = _me()
    if not _same_site():
        abort(403, "a form posted from another site is refused")
    current_app.extensions["csrf"].protect()
    model, version = _version_args()
    if not can_read(me, model):
        abort(403)
    action = request.form.get("action", "")
    if action not in ACTIONS:
        abort(400, f"unknown action {action!r}")
    try:
        done = _dispatch(action, model, version, me, request.form)
        flash(done, "done")
    except ShapgovError as err:
        flash(f"{type(err).__name__}: {err}", "refused")
    return redirect(url_for("shapgov_review.version_page", model=model, version=version), 303)


def _dispatch(action: str, model: str, version: str, me: Any, form: Any) -> str:
    from shapgov.mlflow.approval import approve
    from shapgov.review import actions

    client = _client()
    if action == "finding":
        found = actions.add_finding(
            model, version, severity=form.get("severity", ""), title=form.get("title", ""),
            text=form.get("text", ""), owner=form.get("owner", ""), due=form.get("due", ""),
            actor=me, client=client,
        )  # fmt: skip
        return f"finding {found.id} recorded"
    if action in ("answer", "close"):
        act = actions.answer_finding if action == "answer" else actions.close_finding
        act(model, version, form.get("finding", ""), text=form.get("text", ""), actor=me,
            client=client)  # fmt: skip
        return f"finding {form.get('finding')} {'answered' if action == 'answer' else 'closed'}"
    if action == "signoff":
        actions.sign_off(model, version, text=form.get("text", ""), actor=me, client=client)
        return "signed off"
    reason = form.get("text", "") if action == "reject" else None
    verdict = approve(model, version, actor=me, reject_reason=reason, client=client)
    if verdict.approved:
        return "approved"
    return "rejected: " + "; ".join(verdict.reasons)
