"""An approval check for MLflow registry webhooks (``model_version.created``).

MLflow posts ``{"entity": "model_version", "action": "created", "data": {"name": ...,
"version": ...}}`` with headers ``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` and,
when the webhook has a secret, ``X-MLflow-Signature`` = ``v1,`` + base64 HMAC-SHA256 of
``"{delivery_id}.{timestamp}.{body}"``. :func:`handle_event` verifies that signature
(and refuses deliveries older than ``max_age`` seconds), then runs
:func:`shapgov.mlflow.approval.approve` on the new version. :func:`make_app` wraps it in a
WSGI application; ``shapgov webhook`` serves it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shapgov.errors import InputError
from shapgov.mlflow.approval import Approval, approve


class SignatureError(InputError):
    """The delivery's signature or timestamp does not verify."""


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    max_age: float = 300.0,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the delivery is signed with ``secret`` and fresh."""
    h = {k.lower(): v for k, v in headers.items()}
    delivery = h.get("x-mlflow-delivery-id", "")
    stamp = h.get("x-mlflow-timestamp", "")
    signature = h.get("x-mlflow-signature", "")
    if not (delivery and stamp and signature.startswith("v1,")):
        raise SignatureError("the delivery is not signed; configure the webhook with a secret")
    try:
        age = (time.time() if now is None else now) - int(stamp)
    except ValueError as err:
        raise SignatureError(f"bad timestamp {stamp!r}") from err
    if abs(age) > max_age:
        raise SignatureError(f"the delivery is {age:.0f}s old (more than {max_age:.0f}s)")
    content = f"{delivery}.{stamp}.{body.decode('utf-8')}".encode()
    expected = base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest())
    if not hmac.compare_digest(signature[3:].encode(), expected):
        raise SignatureError("the signature does not match the webhook secret")


def handle_event(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | None,
    alias: str | None = None,
    allow_warn: bool = False,
) -> Approval | None:
    """Approve or reject the model version of a ``model_version.created`` delivery;
    other events are ignored (``None``)."""
    if secret is not None:
        verify_signature(secret, body, headers)
    event = json.loads(body)
    if (event.get("entity"), event.get("action")) != ("model_version", "created"):
        return None
    data = event.get("data", {})
    return approve(data["name"], data["version"], alias=alias, allow_warn=allow_warn)


def make_app(
    *, secret: str | None, alias: str | None = None, allow_warn: bool = False
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application: POST a delivery, get ``{"verdict": ..., "reasons": [...]}``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return [b"POST model_version.created deliveries here\n"]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        headers = {
            key[5:].replace("_", "-"): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        try:
            result = handle_event(body, headers, secret=secret, alias=alias, allow_warn=allow_warn)
        except SignatureError as err:
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [json.dumps({"error": str(err)}).encode()]
        payload = (
            {"verdict": "ignored"}
            if result is None
            else {"verdict": result.verdict, "reasons": result.reasons}
        )
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(payload).encode()]

    return app
