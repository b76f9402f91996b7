"""The approval key: HMAC-SHA256 secret that signs verdicts and review-ledger entries.

``SHAPGOV_APPROVAL_KEY`` (the secret itself) or ``SHAPGOV_APPROVAL_KEY_FILE`` (a file
holding it) signs; the keys listed in ``SHAPGOV_APPROVAL_OLD_KEYS_FILE`` (one per line)
still verify what they signed (rotation). A key's public id is the first 16 hex digits of
its SHA-256, recorded beside every signature.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shapgov.errors import InputError


def _read_key(text: str, where: str) -> bytes:
    key = text.strip().encode()
    if len(key) < 16:
        raise InputError(
            f"the approval key in {where} is shorter than 16 bytes; use a long random secret"
        )
    return key


def signing_key() -> bytes | None:
    """The approval service's key, or ``None`` when none is configured.

    :raises InputError: The key file is missing or the key too short.
    """
    if os.environ.get("SHAPGOV_APPROVAL_KEY"):
        return _read_key(os.environ["SHAPGOV_APPROVAL_KEY"], "SHAPGOV_APPROVAL_KEY")
    path = os.environ.get("SHAPGOV_APPROVAL_KEY_FILE")
    if path:
        try:
            return _read_key(Path(path).read_text(), path)
        except OSError as err:
            raise InputError(f"cannot read SHAPGOV_APPROVAL_KEY_FILE {path}: {err}") from err
    return None


def verifying_keys() -> list[bytes]:
    """The current key and the old ones kept for verifying (rotation)."""
    keys = [k for k in [signing_key()] if k is not None]
    old = os.environ.get("SHAPGOV_APPROVAL_OLD_KEYS_FILE")
    if old:
        try:
            lines = Path(old).read_text().splitlines()
        except OSError as err:
            raise InputError(f"cannot read SHAPGOV_APPROVAL_OLD_KEYS_FILE {old}: {err}") from err
        keys += [_read_key(line, old) for line in lines if line.strip()]
    return keys


def new_key_file(path: str | Path) -> str:
    """Create a new approval key (64 random URL-safe characters, :mod:`secrets`) in a new
    file readable by its owner only (mode 0600), written whole or not at all; returns the
    key's id (:func:`key_id`).

    :raises FileExistsError: ``path`` exists (a key is never overwritten: rotate instead,
        keeping the old key in ``SHAPGOV_APPROVAL_OLD_KEYS_FILE``).
    :raises InputError: ``path``'s folder cannot be written.
    """
    import secrets
    import tempfile

    path = Path(path)
    key = secrets.token_urlsafe(48)
    if path.exists():
        raise FileExistsError(
            f"{path} exists; an approval key is never overwritten (to rotate, create the new "
            "key elsewhere and keep the old one in SHAPGOV_APPROVAL_OLD_KEYS_FILE)"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=".shapgov-key-")
        try:
            os.write(fd, f"{key}\n".encode())
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        os.link(tmp, path)  # fails if path appeared meanwhile: never overwritten
        os.unlink(tmp)
    except FileExistsError:
        os.unlink(tmp)
        raise FileExistsError(f"{path} exists; an approval key is never overwritten") from None
    except OSError as err:
        raise InputError(f"cannot write the approval key to {path}: {err}") from err
    return key_id(key.encode())


def key_id(key: bytes) -> str:
    """A key's public id: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:16]
