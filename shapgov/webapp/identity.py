"""Who is signed in to the review page, and what MLflow lets them see.

The page runs inside ``mlflow server --app-name shapgov``, behind MLflow's basic-auth app:
the request's user is the one the auth app authenticated (``authenticate_request``), never
a form field or a tag. What a user may *read* is MLflow's own permission on the registered
model; what they may *do* is their review role in the ledger (:mod:`shapgov.review.state`).

This module is the only place that touches the auth app's internals
(``mlflow.server.auth``: ``authenticate_request``, ``store``, and the private
``_resolve_user_permission_for_resource``, checked against MLflow 3.x by
``tests/test_review_page.py``); a change there breaks one test, not the page.
"""

from __future__ import annotations

from typing import Any

from shapgov.review.identity import Identity


def signed_in() -> Identity | None:
    """The request's authenticated user, or None (the auth app answers 401 first)."""
    from mlflow.server import auth

    authorization = auth.authenticate_request()
    username = getattr(authorization, "username", None)
    if not username:
        return None
    user = auth.store.get_user(username)
    return Identity(username, True, "review page sign-in", bool(user.is_admin))


def can_read(identity: Identity, model: str) -> bool:
    """Whether MLflow lets ``identity`` read registered model ``model``."""
    if identity.is_admin:
        return True
    from mlflow.server import auth

    try:
        permission = auth._resolve_user_permission_for_resource(
            identity.name, "registered_model", model
        )
    except Exception:  # an unknown model, or an auth app that resolves no such resource
        return False
    return bool(getattr(permission, "can_read", False))


def scope_authentication(app: Any) -> None:
    """Let the auth app authenticate every request under ``/shapgov/`` but not authorize
    it by MLflow's route table (which knows no such route and would refuse it to every
    non-admin); the review views check permissions themselves (:func:`can_read`)."""
    from flask import g, request
    from mlflow.server import auth

    hooks = app.before_request_funcs.setdefault(None, [])
    original = auth._before_request

    def before_request() -> Any:
        if not request.path.startswith("/shapgov/") and request.path != "/shapgov":
            return original()
        authorization = auth.authenticate_request()
        if not isinstance(authorization, auth.Authorization):
            return authorization  # 401 with the basic-auth challenge
        g.mlflow_authenticated_user = authorization.username
        return None

    hooks[:] = [before_request if hook is original else hook for hook in hooks]
