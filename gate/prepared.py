"""A fixed statement run by the driver itself (psycopg, asyncpg, sqlite3): the API's hottest read, and an import."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.sql.compiler import Compiled
    from sqlalchemy.sql.selectable import SelectBase


@dataclass
class _Compiled:
    compiled: Compiled
    sql: str
    row: Any  # a named tuple of the columns it returns: a row by name and by position, as SQLAlchemy's
    binds: list[tuple[str, Any]]  # each parameter's bind processor (UTCDateTime's, JSON's), where it has one
    positions: list[str] | None  # the parameters in order, for a driver that takes them so (sqlite3)
    results: list[tuple[int, Any]] | None = None  # each column's result processor, once a cursor has told its types


class PreparedStatement:
    """A statement whose text never changes, compiled once and run by the driver as a server-side prepared statement.
    Through SQLAlchemy's execution layer a run read or an import's write spent more in Python than in Postgres: an
    execution context, the cursor's column descriptions read into result metadata on every call, and on the asyncio
    connections a greenlet and a Connection around the pool's (bench/mlflow_peer.py). What goes in and comes out is
    what SQLAlchemy would send and return: the parameters pass its bind processors, each column its result
    processor, and a driver error is raised as SQLAlchemy raises it (an outage answers 503)."""

    def __init__(self, statement: SelectBase) -> None:
        self.statement = statement
        self._by_dialect: dict[type[Dialect], _Compiled] = {}  # psycopg's, sqlite3's, SQLAlchemy's asyncpg

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(type(dialect))
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            binds = [
                (name, bind.type.dialect_impl(dialect).bind_processor(dialect)) for name, bind in compiled.binds.items()
            ]
            found = self._by_dialect[type(dialect)] = _Compiled(
                compiled,
                str(compiled),
                namedtuple("PreparedRow", self.statement.selected_columns.keys(), rename=True),
                [(name, process) for name, process in binds if process is not None],
                None if compiled.positiontup is None else list(compiled.positiontup),
            )
        return found

    def _parameters(self, found: _Compiled, params: dict[str, Any]) -> dict[str, Any] | list[Any]:
        values = dict(found.compiled.construct_params(params) or {})  # with the statement's own literal values
        for name, process in found.binds:
            try:
                values[name] = process(values[name])
            except Exception as error:  # as SQLAlchemy reports a value its type refuses
                raise sa_exc.StatementError(str(error), found.sql, params, error) from error
        return values if found.positions is None else [values[name] for name in found.positions]

    def _processors(self, found: _Compiled, dialect: Dialect, description: Any) -> list[tuple[int, Any]]:
        """Each column's result processor, as SQLAlchemy picks it: by its type and the driver's type code (a float
        column's depends on the code Postgres sends), from a cursor's description or its like. Callers ask at the
        first execution only, then keep them: psycopg builds a cursor's description anew at each call for it."""
        columns = zip(self.statement.selected_columns, description, strict=True)
        processors = [
            (i, c.type.dialect_impl(dialect).result_processor(dialect, column[1]))  # its type code
            for i, (c, column) in enumerate(columns)
        ]
        found.results = [(i, process) for i, process in processors if process is not None]
        return found.results

    def _rows(self, found: _Compiled, processors: list[tuple[int, Any]], rows: list[Any]) -> list[Any]:
        made = []
        for values in rows:
            row = list(values)
            for i, process in processors:
                row[i] = process(row[i])
            made.append(found.row._make(row))
        return made

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[Any]:
        """All its rows, by column name, on this connection's driver connection, in the transaction the connection
        has begun (or in autocommit: db.reader's on Postgres)."""
        return self.driver_rows(connection.dialect, connection.connection.driver_connection, params)

    def driver_rows(self, dialect: Dialect, driver: Any, params: dict[str, Any]) -> list[Any]:
        """rows() on a driver connection itself (psycopg's, or sqlite3's: see read_snapshot)."""
        found = self._compiled(dialect)
        driver_error = dialect.loaded_dbapi.Error  # psycopg's or sqlite3's own
        try:
            cursor = driver.cursor()
            if found.positions is None:  # psycopg: prepared by the server
                cursor.execute(found.sql, self._parameters(found, params), prepare=True)
            else:  # sqlite3 keeps its own cache of prepared statements
                cursor.execute(found.sql, self._parameters(found, params))
            rows = cursor.fetchall()
            processors = found.results
            if processors is None:
                processors = self._processors(found, dialect, cursor.description)
        except driver_error as error:
            raise sa_exc.DBAPIError.instance(found.sql, params, error, driver_error) from error
        return self._rows(found, processors, rows)

    async def first(self, engine: AsyncEngine, params: dict[str, Any]) -> Any | None:
        """The first row by column name, or None, by asyncpg on a connection of db.async_reader's pool (with its
        check for a closed one): no greenlet around the statement, no cursor adapted to DB-API. asyncpg keeps the
        statement prepared per connection; its column types, for the result processors, are read once."""
        found = self._compiled(engine.dialect)
        dbapi_error = engine.dialect.loaded_dbapi.Error
        try:
            pooled = await engine.raw_connection()
        except dbapi_error as error:  # the pool could not connect (db.async_reader's OperationalError)
            raise sa_exc.DBAPIError.instance(None, None, error, dbapi_error) from error
        try:
            driver: Any = pooled.driver_connection
            arguments = self._parameters(found, params)
            if found.results is None:
                statement = await driver.prepare(found.sql)
                columns = [(column.name, column.type.oid) for column in statement.get_attributes()]
                self._processors(found, engine.dialect, columns)
                values = await statement.fetchrow(*arguments)
            else:
                values = await driver.fetchrow(found.sql, *arguments)
        except Exception as error:
            translated = self._translated(engine, pooled, found.sql, params, error)
            if translated is None:
                raise
            raise translated from error
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool, whose reset runs in a greenlet
        return None if values is None else self._rows(found, found.results or [], [values])[0]

    @staticmethod
    def _translated(
        engine: AsyncEngine, pooled: Any, sql: str, params: dict[str, Any], error: Exception
    ) -> sa_exc.StatementError | None:
        """asyncpg's error as SQLAlchemy raises it from its own asyncpg cursor (None for any other error): the DB-API
        error its adapter makes of it, then SQLAlchemy's, and a connection that is gone invalidated (db.unavailable
        then calls it an outage)."""
        dbapi_error = engine.dialect.loaded_dbapi.Error
        adapted = pooled.dbapi_connection
        try:
            adapted._handle_exception(error)  # raises the DB-API error, or re-raises one that is not asyncpg's
        except dbapi_error as translated:
            invalidated = engine.dialect.is_disconnect(translated, adapted, None)
            if invalidated:
                pooled.invalidate(translated)
            return sa_exc.DBAPIError.instance(sql, params, translated, dbapi_error, connection_invalidated=invalidated)
        except Exception:  # not a database error: the caller raises it as it is
            pass
        return None


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Any]:
    """SQLite: a connection of the pool's, its driver's own, in a read transaction: the statements run on it
    (driver_rows) read one snapshot. SQLAlchemy's Connection and its BEGIN cost as much CPU as a run's two
    statements (bench/versus.py). The pool's reset rolls the transaction back when the connection goes back."""
    driver_error = engine.dialect.loaded_dbapi.Error
    try:
        pooled = engine.raw_connection()
    except driver_error as error:  # as Engine.connect() raises it: a file that cannot be opened is an outage
        raise sa_exc.DBAPIError.instance(None, None, error, driver_error) from error
    try:
        try:
            pooled.driver_connection.execute("BEGIN")  # type: ignore[union-attr]
        except driver_error as error:
            raise sa_exc.DBAPIError.instance("BEGIN", {}, error, driver_error) from error
        yield pooled.driver_connection
    finally:
        pooled.close()
