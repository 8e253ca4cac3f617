"""A fixed SELECT run by psycopg itself on a pooled asyncio connection: the API's hottest read on Postgres."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Unpack

from sqlalchemy import Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine


class PreparedSelect:
    """A SELECT whose text never changes, compiled once and run as a server-side prepared statement on the driver's
    connection, checked out of db.async_reader's pool (with its socket check). Through SQLAlchemy's execution layer
    a run read spent more in Python than in Postgres: an execution context, the cursor's 40-odd column descriptions
    read into result metadata on every call, a greenlet, the Connection around the pool's (bench/mlflow_peer.py).
    The rows are the ones SQLAlchemy returns, by column name: each column's result processor (UTCDateTime's) is
    applied as it would be, and a driver error is raised as SQLAlchemy raises it (an outage answers 503)."""

    def __init__(self, statement: Select[Unpack[tuple[Any, ...]]]) -> None:
        self.statement = statement
        self._found: list[tuple[int, Any]] | None = None

    @functools.cache  # noqa: B019 - one dialect per process; the statements are module constants
    def _compiled(self, dialect: Dialect) -> tuple[str, list[str]]:
        return str(self.statement.compile(dialect=dialect)), list(self.statement.selected_columns.keys())

    def _processors(self, dialect: Dialect, cursor: Any) -> list[tuple[int, Any]]:
        """Each column's result processor, as SQLAlchemy picks it: by its type and the driver's type code (a float
        column's depends on the code Postgres sends). Looked up at the first execution, then kept: the driver
        builds the cursor's description anew at each call for it."""
        if self._found is None:
            columns = zip(self.statement.selected_columns, cursor.description, strict=True)
            processors = [
                (i, c.type.dialect_impl(dialect).result_processor(dialect, column.type_code))
                for i, (c, column) in enumerate(columns)
            ]
            self._found = [(i, process) for i, process in processors if process is not None]
        return self._found

    async def first(self, engine: AsyncEngine, params: dict[str, Any]) -> SimpleNamespace | None:
        """The first row by column name, or None."""
        sql, names = self._compiled(engine.dialect)
        driver_error = engine.dialect.loaded_dbapi.Error  # psycopg's own
        pooled = await engine.raw_connection()
        try:
            cursor = pooled.driver_connection.cursor()  # type: ignore[union-attr]
            await cursor.execute(sql, params, prepare=True)
            values = await cursor.fetchone()
            processors = self._processors(engine.dialect, cursor)
        except driver_error as error:
            raise sa_exc.DBAPIError.instance(sql, params, error, driver_error) from error
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool; its reset may await the driver
        if values is None:
            return None
        row = list(values)
        for i, process in processors:
            row[i] = process(row[i])
        return SimpleNamespace(**dict(zip(names, row, strict=True)))
