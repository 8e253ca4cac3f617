"""Request dependencies: the session (the edge owns the transaction) and the caller's identity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from gate.errors import Forbidden, Unauthorized
from gate.settings import Settings
from gate.store import tokens
from gate.store.db import transaction
from gate.store.models import MAX_ID

READ_METHODS = ("GET", "HEAD", "OPTIONS")
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="run id")]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def _write_turn(request: Request) -> AsyncIterator[None]:
    """Writers wait for their turn here, on the event loop. A write request spans several thread-pool hops (its
    dependencies, the handler, the response model, the commit); had writers waited for a lock in worker threads
    (SQLite's write lock, a Postgres row lock on an Idempotency-Key), they could take every thread while the
    holder needs one more to commit: a burst then ends in 'database is locked' or hangs."""
    if request.method in READ_METHODS:
        yield
        return
    async with write_turn(request.app):
        yield


def write_turn(app: Any) -> asyncio.Semaphore:
    """A turn to write, for handlers that open their own write transaction."""
    turn: asyncio.Semaphore = app.state.write_turn
    return turn


def get_session(request: Request, _turn: Annotated[None, Depends(_write_turn, scope="function")]) -> Iterator[Session]:
    """Commit when the handler returns, roll back when it raises; writes take SQLite's lock up front."""
    with transaction(request.app.state.sessions, write=request.method not in READ_METHODS) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


ANONYMOUS = Principal(name="anonymous", scopes=frozenset({"read"}))
# The dashboard's sign-in cookie. It only ever grants reads: a cookie rides along with cross-site requests.
READ_COOKIE = "gate_token"


def _principal(request: Request, settings: Settings) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    cookie = request.cookies.get(READ_COOKIE)
    if not header and cookie and request.method in READ_METHODS:
        with request.app.state.sessions() as session:
            found = tokens.lookup(session, cookie)
            if found is not None:
                return Principal(name=found.name, scopes=frozenset(tokens.granted(found.scopes)) & {"read"})
    if not header:
        return ANONYMOUS if settings.anonymous_read and request.method in READ_METHODS else None
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    with request.app.state.sessions() as session:
        found = tokens.lookup(session, token.strip())
        if found is None:
            raise Unauthorized("unknown or revoked token")
        return Principal(name=found.name, scopes=frozenset(tokens.granted(found.scopes)))


def require(scope: str):
    def dependency(request: Request, settings: SettingsDep) -> Principal:
        principal = _principal(request, settings)
        if principal is None:
            raise Unauthorized()
        if scope not in principal.scopes:
            raise Forbidden(f"this request needs the {scope!r} scope")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Submitter = Annotated[Principal, Depends(require("submit"))]
WorkerAuth = Annotated[Principal, Depends(require("worker"))]
Admin = Annotated[Principal, Depends(require("admin"))]
