"""Request dependencies: the settings and the session (the edge owns the transaction)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gate.db import MAX_ID, open_session
from gate.settings import Settings

T = TypeVar("T")

READ_METHODS = ("GET", "HEAD", "OPTIONS")
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="run id")]


async def get_settings_dep(request: Request) -> Settings:  # async: no thread-pool hop for an attribute
    return request.app.state.settings


async def database(app: Any, work: Callable[[], T], *, write: bool = False) -> T:
    """Run a request's short database step (a read, a commit). On SQLite it runs right here on the event loop: in
    WAL mode a reader never waits on a lock, and handing an indexed read of a local file to a worker thread and
    back costs more CPU than the read (about 0.2 ms a hop on 2 cores, bench/mlflow_peer.py). On Postgres every
    statement crosses a network, so it runs in a worker thread. Anything that may wait on SQLite's write lock
    or the disk (`write`: a write transaction's statements, its commit) runs in a worker thread on both."""
    if app.state.inline_database and not write:
        return work()
    return await run_in_threadpool(work)


async def read(app: Any, work: Callable[[Connection], T]) -> T:
    """A hot read (a page of runs, a token) on a connection of db.reader, with no thread hop: on SQLite right here
    (see database()), on Postgres on an asyncio connection (db.async_reader) whose waits are awaits. A run is read
    by the drivers themselves (gate.prepared): asyncpg on that pool, sqlite3 on db.reader's."""
    if app.state.inline_database:
        with app.state.reader.connect() as connection:
            return work(connection)
    async with app.state.async_reader.connect() as connection:
        return await connection.run_sync(work)


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


async def get_session(
    request: Request, _turn: Annotated[None, Depends(_write_turn, scope="function")]
) -> AsyncIterator[Session]:
    """Commit when the handler returns, roll back when it raises. The session takes its connection (and a writer
    SQLite's write lock) at its first statement, in the handler's thread; it ends here (database()). A writer's
    commit may checkpoint SQLite's WAL into the database file: disk work that must not stall the event loop, and
    with it every other request's heartbeat."""
    write = request.method not in READ_METHODS
    with open_session(request.app.state.sessions, write=write) as session:
        try:
            yield session
        except BaseException:
            await database(request.app, session.rollback, write=write)
            raise
        await database(request.app, session.commit, write=write)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
