"""Who acts: the user the tracking server authenticates, or a declared user where none does.

On a shared MLflow server running the basic-auth app (``mlflow server --app-name
basic-auth`` or ``--app-name shapgov``), the user is the one the client signs in as
(``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``); shapgov asks the server who
that is (``GET /api/2.0/mlflow/users/get``), which only answers a signed-in user about
themself, and records ``authenticated=True``. A store without authentication (the embedded
sqlite store, a plain file store, a server without the auth app) authenticates nobody:
the user is declared (``SHAPGOV_USER``, or ``--as`` on the command line) and every entry,
verdict and report made there says that its identities were not authenticated. A
declared name that differs from the signed-in one is refused, never preferred. The review
page passes the identity its request was authenticated as (:class:`Identity` built by
:mod:`shapgov.webapp`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shapgov.errors import IdentityError


@dataclass(frozen=True)
class Identity:
    """A user acting on the review workflow: ``name``, whether the tracking server
    ``authenticated`` them, ``source`` (how the name was learnt), and ``is_admin``
    (the auth app's administrator flag; on a store without authentication nobody is an
    administrator by sign-in and role grants are declared like every other action)."""

    name: str
    authenticated: bool
    source: str
    is_admin: bool = False

    def describe(self) -> str:
        """The name and how it was learnt, for reports and messages."""
        how = "authenticated by the tracking server" if self.authenticated else "declared"
        return f"{self.name} ({how})"


@lru_cache(maxsize=16)
def _server_user(uri: str, username: str, password: str) -> dict[str, Any] | None:
    """The auth app's record of ``username`` on the server at ``uri`` (None: the server
    has no auth app)."""
    import requests

    try:
        response = requests.get(
            f"{uri.rstrip('/')}/api/2.0/mlflow/users/get",
            params={"username": username},
            auth=(username, password),
            timeout=30,
        )
    except requests.RequestException as err:
        from shapgov.mlflow.failures import unavailable

        raise unavailable(err, "asking the tracking server who is signed in", "try again",
                          writing=False) from err  # fmt: skip
    if response.status_code == 401:
        raise IdentityError(
            f"the tracking server at {uri} refused the sign-in of {username!r}: check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    if response.status_code in (404, 405):
        return None
    try:
        return dict(response.json()["user"])
    except (ValueError, KeyError, TypeError):
        return None


def current_identity(declared: str | None = None, *, tracking_uri: str | None = None) -> Identity:
    """The user acting now (see the module).

    :param declared: A name declared on the command line (``--as``); else
        ``SHAPGOV_USER``.
    :raises IdentityError: On a server with authentication, ``declared`` differs from the
        signed-in user; on a store without, no user is declared.
    :raises TrackingUnavailableError: The server did not answer.
    """
    import mlflow

    from shapgov.mlflow.failures import tracking_user

    uri = tracking_uri or mlflow.get_tracking_uri()
    declared = declared or os.environ.get("SHAPGOV_USER") or None
    if uri.startswith(("http://", "https://")) and tracking_user():
        from mlflow.utils.credentials import read_mlflow_creds

        creds = read_mlflow_creds()
        record = _server_user(uri, creds.username or "", creds.password or "")
        if record is not None:
            name = str(record.get("username") or creds.username)
            if declared and declared != name:
                raise IdentityError(
                    f"signed in to the tracking server as {name!r}, so this action cannot be "
                    f"taken as {declared!r}: sign in as that user instead"
                )
            return Identity(name, True, "tracking server sign-in", bool(record.get("is_admin")))
    if not declared:
        raise IdentityError(
            f"the tracking store {uri} does not authenticate users, so say who acts: set "
            "SHAPGOV_USER=<name> (or pass --as <name>); actions recorded there say their "
            "identities were declared, not authenticated"
        )
    source = "--as" if declared != os.environ.get("SHAPGOV_USER") else "SHAPGOV_USER"
    return Identity(declared.strip(), False, source)


def set_author(manifest: dict[str, Any], run: Any) -> Identity | None:
    """Who logged a set: the ``logged_by`` its manifest records, else the source run's
    user (declared, never authenticated)."""
    logged = manifest.get("logged_by") if isinstance(manifest, dict) else None
    if isinstance(logged, dict) and logged.get("name"):
        return Identity(str(logged["name"]), bool(logged.get("authenticated")), "manifest")
    user = getattr(getattr(run, "info", None), "user_id", None)
    return Identity(str(user), False, "run user") if user else None
