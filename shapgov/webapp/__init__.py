"""The review page, served with the tracking server: ``mlflow server --app-name shapgov``.

An ``mlflow.app`` plugin (entry point ``shapgov = "shapgov.webapp:create_app"``) that
adds the review views (:mod:`shapgov.webapp.views`, under ``/shapgov/``) to MLflow's own
server and composes MLflow's basic-auth app, so users sign in as they do for MLflow itself
(``MLFLOW_AUTH_CONFIG_PATH``, the admin password, ``MLFLOW_FLASK_SERVER_SECRET_KEY`` the
same on every worker). The server's environment holds the approval service's credentials
(``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, a user that may write the
ledger and the models' tags) and the approval key (``SHAPGOV_APPROVAL_KEY_FILE``): the page
acts through them, and records the signed-in user as the actor.
"""

from __future__ import annotations

from typing import Any


def create_app(app: Any = None) -> Any:
    """MLflow's server app with the review views and MLflow's basic-auth app.

    :returns: What ``mlflow.server.auth.create_app`` returns (a FastAPI app wrapping
        Flask under uvicorn, the Flask app under gunicorn).
    """
    from mlflow.server import app as mlflow_app
    from mlflow.server.auth import create_app as with_auth

    from shapgov.webapp.identity import scope_authentication
    from shapgov.webapp.views import blueprint

    app = app or mlflow_app
    if "shapgov_review" not in app.blueprints:
        app.register_blueprint(blueprint)
    served = with_auth(app)
    scope_authentication(app)
    return served
