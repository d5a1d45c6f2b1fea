"""Write tokens: ``mt_<public id>_<secret>``; only SHA-256(secret) is stored, compared in constant time.

The secret carries 256 random bits, so a plain SHA-256 (no slow KDF) is enough to make a stolen
database useless for writing; the public id finds the row without comparing secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from modeltrace.errors import UsageError
from modeltrace.registry.schema import TokenRow

_TOKEN = re.compile(r"^mt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_namespace(namespace: str) -> str:
    if not NAMESPACE.match(namespace):
        raise UsageError(
            f"Namespace {namespace!r} must be 1-100 letters, digits, '.', '_' or '-', starting alphanumeric."
        )
    return namespace


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    def __init__(self, sessions: sessionmaker[Any]) -> None:
        self._sessions = sessions

    def create(self, namespace: str) -> str:
        """A new token for ``namespace``; the only time its secret is ever seen."""
        check_namespace(namespace)
        public_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
        secret = secrets.token_urlsafe(32)
        with self._sessions.begin() as session:
            session.add(TokenRow(public_id=public_id, namespace=namespace, secret_hash=_hash(secret)))
        return f"mt_{public_id}_{secret}"

    def namespace_of(self, token: str) -> str | None:
        """The namespace a token writes to, or None when it is not a valid token."""
        match = _TOKEN.match(token or "")
        if match is None:
            return None
        public_id, secret = match.groups()
        with self._sessions() as session:
            row = session.scalars(select(TokenRow).where(TokenRow.public_id == public_id)).first()
        expected = row.secret_hash if row is not None else _hash("no such token")
        # Constant-time comparison; an unknown id still pays one hash and one compare.
        same = hmac.compare_digest(expected, _hash(secret))
        return row.namespace if (row is not None and same) else None
