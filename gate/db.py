"""Engine, sessions and the column types every table shares. SQLite (WAL, foreign keys) by default; Postgres by URL."""

from __future__ import annotations

import select as io_select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Execution option: open the SQLite transaction with BEGIN IMMEDIATE. A writer that starts as a reader and
# upgrades later can fail with SQLITE_BUSY regardless of the busy timeout; taking the write lock up front waits.
IMMEDIATE = {"gate_immediate": True}
# Pools never make a thread wait: a request holds its connection across several thread-pool hops (dependencies,
# handler, commit), so threads blocked on an exhausted pool can starve the holders of the threads they need to
# finish. Postgres: more connections than the server's 40 worker threads plus its background loops.
SQLITE_POOL = {"pool_size": 8, "max_overflow": -1}  # connections to a file are cheap
POSTGRES_POOL = {"pool_size": 10, "max_overflow": 50}


# Postgres NOTIFY channels (gate.deployment.wakeups): what waiting API processes look for again once woken
QUEUED = "gate_queued"  # a run waits for a worker: claims
CHANGED = "gate_changed"  # a running run was cancelled, handed back or lost its lease: watches
OUTBOX = "gate_outbox"  # a notification waits to be sent: the delivery sender
CHANNELS = (QUEUED, CHANGED, OUTBOX)
NOTIFY_SCOPE = "coalesce(current_schema(), '')"  # SQL: a deployment's schema, who of those listening is meant
WOKEN_LOOK_S = 5.0  # seconds: a waiter woken by NOTIFY still looks at least this often, whatever it missed

STARTUP_LOCK = 0x6761_7465  # "gate": the Postgres advisory lock that processes starting together queue on

MAX_ID = 2**31 - 1  # ids are Integer, 32-bit on Postgres: a larger value cannot name a row


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: gate stores UTC only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _psycopg(url: str) -> str:
    """A plain postgresql:// URL names psycopg 3, the driver gate installs (SQLAlchemy's default is psycopg2)."""
    return "postgresql+psycopg://" + url.removeprefix("postgresql://") if url.startswith("postgresql://") else url


def make_engine(url: str, busy_timeout_s: float = 30.0, **kwargs: Any) -> Engine:
    if not url.startswith("sqlite"):
        engine = create_engine(_psycopg(url), **{**POSTGRES_POOL, **kwargs})
        event.listen(engine, "checkout", _closed_while_pooled)
        return engine

    engine = create_engine(
        url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False}, **{**SQLITE_POOL, **kwargs}
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own is deferred-only)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("gate_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _closed_while_pooled(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, a terminated backend). SQLAlchemy's pool_pre_ping
    asks the server, a round trip per checkout (as many as a whole run read); this looks at the socket instead, as Go's
    MySQL driver does (its connCheck). The server sends nothing unasked on an idle connection (gate LISTENs on
    connections of its own) except when it goes away: its last message, then end of file, so a readable socket is
    a dead one. Raising DisconnectionError makes the pool discard it and connect anew."""
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    if hasattr(driver, "is_closed"):  # asyncpg's (async_reader): it reads its socket all the time, so it knows
        if driver.is_closed():
            raise sa_exc.DisconnectionError("the server closed the connection while it sat in the pool")
        return
    if driver.closed:
        raise sa_exc.DisconnectionError("the connection was closed while it sat in the pool")
    poller = io_select.poll()
    poller.register(driver.fileno(), io_select.POLLIN)
    if poller.poll(0):
        raise sa_exc.DisconnectionError("the server closed the connection while it sat in the pool")


def reader(engine: Engine) -> Engine:
    """The engine for the hot reads of a few statements (a run, a page of runs, a token). On Postgres they run
    without BEGIN and ROLLBACK, two of a run read's round trips: under READ COMMITTED each statement takes its own
    snapshot inside a transaction too, so nothing is lost. SQLite keeps its transaction: one snapshot for all."""
    return engine if is_sqlite(engine) else engine.execution_options(isolation_level="AUTOCOMMIT")


# libpq's own knobs for its socket, which asyncpg has not: it would pass them to the server as settings, and the
# server would refuse the connection. The asyncio reads go without them; connect_timeout becomes asyncpg's timeout.
_LIBPQ_SOCKET_ONLY = (
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "fallback_application_name",
)


def asyncpg_dsn(url: str) -> tuple[str, float | None]:
    """A gate Postgres URL as asyncpg takes it (a libpq URL: options=, sslmode=, application_name= as they are),
    and its connect_timeout in seconds, if it has one."""
    parsed = make_url(_psycopg(url))
    query = {k: v for k, v in parsed.query.items() if k not in _LIBPQ_SOCKET_ONLY and k != "connect_timeout"}
    timeout = parsed.query.get("connect_timeout")
    seconds = float(timeout) if isinstance(timeout, str) else 0.0  # libpq's 0, no limit: asyncpg's default then
    dsn = parsed.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
    return dsn, seconds if seconds > 0 else None


def async_reader(url: str, **kwargs: Any) -> AsyncEngine:
    """Postgres: reader()'s statements on asyncio connections, for requests that read on the event loop. A read's
    wait on the network is then an await, not a worker thread blocked on a socket: handing a request to a thread
    and back cost as much CPU as a run read itself (bench/mlflow_peer.py). The driver is asyncpg: a run read took
    0.30 ms on it against 0.44 ms on psycopg's asyncio connections in the same pool, and GET /runs/{id} got 1.2x
    faster (bench/versus.py). SQLAlchemy's asyncio extension runs the same statements and rows (in a greenlet),
    with the same pool check; its asyncpg adapter raises other error classes than psycopg (see unavailable())."""
    import asyncpg  # here: the CLI and workers import this module too
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
    from sqlalchemy.ext.asyncio import create_async_engine

    dsn, seconds = asyncpg_dsn(url)
    timeout = {} if seconds is None else {"timeout": seconds}  # else asyncpg's own default

    async def connect() -> Any:
        """A failure to connect is an OperationalError, as psycopg raises it, so an outage answers 503 (asyncpg
        raises OSError, TimeoutError or its own)."""
        try:
            return await asyncpg.connect(dsn, **timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise AsyncAdapt_asyncpg_dbapi.OperationalError(str(error), error) from error

    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=connect, isolation_level="AUTOCOMMIT", **{**POSTGRES_POOL, **kwargs}
    )
    event.listen(engine.sync_engine, "checkout", _closed_while_pooled)
    return engine


# SQLSTATE classes of a server that cannot serve now, whatever the statement: connection exceptions, transaction
# rollbacks (a retry succeeds), insufficient resources, operator intervention (a statement timeout, a shutdown),
# system errors. psycopg raises them as OperationalError; SQLAlchemy's asyncpg adapter as a bare DB-API Error.
_TRY_AGAIN_STATES = ("08", "40", "53", "57", "58")


def unavailable(error: BaseException) -> bool:
    """The database cannot be reached (down, restarting, its pool exhausted, too slow), as opposed to a bad
    statement."""
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    state = getattr(error.orig, "sqlstate", None)
    return error.connection_invalidated or (isinstance(state, str) and state[:2] in _TRY_AGAIN_STATES)


class Sessions(sessionmaker[Session]):
    """An engine's session factory, with its writers' bind made once: on SQLite, the engine with BEGIN IMMEDIATE.
    Making that bind per write transaction took a tenth of an import's CPU in a profile (SQLAlchemy joins the
    engine's event listeners anew each time); it shares the engine's pool, so it outlives a dispose()."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.writer_bind = engine.execution_options(**IMMEDIATE) if is_sqlite(engine) else engine


def make_session_factory(engine: Engine) -> Sessions:
    return Sessions(engine)


def open_session(factory: Sessions, *, write: bool = False) -> Session:
    """A session that takes its connection at its first statement, not before: a writer on SQLite then begins
    with BEGIN IMMEDIATE (through its bind's execution options), so opening one never waits on a lock."""
    return factory(bind=factory.writer_bind) if write else factory()


@contextmanager
def transaction(factory: Sessions, *, write: bool = False) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on error. `write` takes SQLite's write lock first."""
    with open_session(factory, write=write) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def notify(session: Session, *channels: str) -> None:
    """Wake the processes waiting on these channels once this transaction commits (Postgres delivers NOTIFY at
    commit, so they see its rows); on SQLite they poll. Channels span the database, so the payload names the
    deployment's schema (NOTIFY_SCOPE): deployments in other schemas of the same database ignore it."""
    if session.get_bind().dialect.name != "sqlite":  # one statement, one round trip, whatever the channels
        session.execute(select(*(func.pg_notify(channel, literal_column(NOTIFY_SCOPE)) for channel in channels)))


def one_at_a_time(connection: Connection) -> None:
    """Processes and hosts starting together (migrations, loading the baselines files) take turns: the
    transaction's write lock on SQLite, an advisory lock until commit on Postgres."""
    if connection.dialect.name != "sqlite":
        connection.execute(select(func.pg_advisory_xact_lock(STARTUP_LOCK)))
