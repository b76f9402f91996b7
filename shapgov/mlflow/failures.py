"""Tracking-server failures, told apart and typed.

MLflow's client raises one :class:`mlflow.exceptions.MlflowException` for everything: a
refused permission, a missing run, a server that is restarting. Callers here need to
know which, to say what to do: a refused write is a
:class:`~shapgov.errors.ApprovalPermissionError` (ask for EDIT), an unreachable server a
:class:`~shapgov.errors.TrackingUnavailableError` (retry; nothing half-written is ever
approved, because a set without its manifest, or with files that do not match it, is
rejected).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shapgov.errors import ShapgovError, TrackingPermissionError, TrackingUnavailableError

#: HTTP statuses of a server that is restarting or overloaded (a proxy in front of it).
RETRYABLE_STATUS = (502, 503, 504)
#: MLflow error codes with the same meaning.
RETRYABLE_CODES = ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED")


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def is_unavailable(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) says the server could not be reached or is
    temporarily unable to answer: connection refused or reset, a timeout, 502/503/504."""
    import requests

    for link in _chain(err):
        if isinstance(link, requests.ConnectionError | requests.Timeout | ConnectionError):
            return True
        if isinstance(link, requests.exceptions.ChunkedEncodingError):
            return True
        if getattr(link, "error_code", None) in RETRYABLE_CODES:
            return True
        response = getattr(link, "response", None)
        if getattr(response, "status_code", None) in RETRYABLE_STATUS:
            return True
    return False


def is_permission_denied(err: BaseException) -> bool:
    """Whether the server refused the request for lack of permission (HTTP 401/403)."""
    for link in _chain(err):
        if getattr(link, "error_code", None) in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            return True
        response = getattr(link, "response", None)
        if getattr(response, "status_code", None) in (401, 403):
            return True
    return False


def _cause(err: BaseException) -> str:
    """The first line of the error, short."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 240 else text[:237].rsplit(" ", 1)[0] + " ..."


def unavailable(
    err: BaseException, action: str, retry: str, *, writing: bool = True
) -> TrackingUnavailableError:
    """The typed error for ``err``, an unreachable server met while doing ``action``."""
    import mlflow

    after = (
        "What was being written is incomplete, and approval rejects an incomplete set; "
        if writing
        else ""
    )
    return TrackingUnavailableError(
        f"{action}: the tracking server {mlflow.get_tracking_uri()} did not answer "
        f"({type(err).__name__}: {_cause(err)}). {after}{retry}. (MLflow's client retried "
        "first: MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR "
        "set how long.)"
    )


def refused(err: BaseException, action: str) -> TrackingPermissionError:
    """The typed error for ``err``, a request the server refused to this user."""
    return TrackingPermissionError(
        f"{action}: the tracking server refused it to user {tracking_user() or '(none)'!r} "
        f"({_cause(err)}). Sign in (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
        "or ~/.mlflow/credentials) as a user with the permission it needs in MLflow's auth "
        "app: READ to read, EDIT to write tags and set aliases, MANAGE to delete aliases."
    )


#: What a store says when two clients insert the same row at once (PostgreSQL, MySQL,
#: sqlite): MLflow's tag writes read, then insert, so concurrent writes of one new tag race.
CONFLICT_MARKERS = ("IntegrityError", "duplicate key", "UNIQUE constraint", "Duplicate entry")


def is_write_conflict(err: BaseException) -> bool:
    """Whether the server failed a write because a concurrent client wrote the same row
    first (the same write, tried again, then updates that row)."""
    return any(m in str(link) for link in _chain(err) for m in CONFLICT_MARKERS)


def write_retrying(write: Callable[[], Any], *, attempts: int = 5) -> Any:
    """``write()``, tried again (after a short random pause) when it lost a race with a
    concurrent write of the same row (:func:`is_write_conflict`)."""
    for attempt in range(attempts):
        try:
            return write()
        except Exception as err:
            if attempt == attempts - 1 or not is_write_conflict(err):
                raise
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
    return None  # pragma: no cover (the loop returns or raises)


def typed(
    err: BaseException, action: str, *, retry: str, writing: bool = True
) -> ShapgovError | None:
    """The typed error for a tracking failure ``err`` (unreachable server or refused
    request), or None when it is neither."""
    if is_unavailable(err):
        return unavailable(err, action, retry, writing=writing)
    if is_permission_denied(err):
        return refused(err, action)
    return None


@contextmanager
def tracking_errors(action: str, *, retry: str, writing: bool = True) -> Iterator[None]:
    """Turn an unreachable tracking server inside the block into
    :class:`~shapgov.errors.TrackingUnavailableError` naming ``action`` and saying how to
    ``retry``, and a refused request into :class:`~shapgov.errors.TrackingPermissionError`;
    shapgov's own errors and every other error pass unchanged."""
    try:
        yield
    except ShapgovError:
        raise
    except Exception as err:
        error = typed(err, action, retry=retry, writing=writing)
        if error is None:
            raise
        raise error from err


def tracking_user() -> str | None:
    """The MLflow user this process signs in as (``MLFLOW_TRACKING_USERNAME``, else
    ``~/.mlflow/credentials``, as MLflow's client resolves it), or None."""
    from mlflow.utils.credentials import read_mlflow_creds

    return read_mlflow_creds().username or None
