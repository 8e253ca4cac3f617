"""API tokens: random, shown once, stored as sha256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, Row, bindparam, select
from sqlalchemy.orm import Session

from gate.auth.models import ApiToken
from gate.db import utcnow
from gate.errors import Conflict, InvalidInput

SCOPES = ("read", "submit", "worker", "admin")
# A scope also grants these.
IMPLIED = {
    "admin": {"read", "submit", "worker", "admin"},
    "submit": {"read", "submit"},
    "worker": {"read", "worker"},
}
PREFIX = "gate_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str, scopes: list[str]) -> str:
    """Store a new token and return its only plain-text copy."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} exists already")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=digest(token), scopes=sorted(set(scopes))))
    session.flush()
    return token


def replace(session: Session, name: str, scopes: list[str]) -> str:
    """Create a token under this name, dropping an earlier one (local set-ups recreate theirs at each start)."""
    old = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if old is not None:
        session.delete(old)
        session.flush()
    return create(session, name, scopes)


# Built once: every API request asks this, and building a statement costs four times running it (on SQLite)
LIVE_TOKEN = select(ApiToken.name, ApiToken.scopes).where(
    ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None)
)


def lookup(db: Session | Connection, token: str) -> Row[str, list[str]] | None:
    """The live token's name and scopes: columns, not the entity, so a bare connection can ask."""
    return db.execute(LIVE_TOKEN, {"token_hash": digest(token)}).first()


def granted(scopes: list[str]) -> set[str]:
    return set().union(*(IMPLIED.get(scope, {scope}) for scope in scopes)) if scopes else set()


def revoke(session: Session, name: str) -> None:
    found = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if found is None:
        raise InvalidInput(f"no token named {name!r}")
    found.revoked_at = utcnow()
