"""Request dependencies: the settings and the session (the edge owns the transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from gate.db import MAX_ID, transaction
from gate.settings import Settings

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
