"""gate.prepared on Postgres: the driver's rows are SQLAlchemy's, its errors are SQLAlchemy's, and the pool's
checks still hold."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Float, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from gate.db import UTCDateTime, async_reader, asyncpg_dsn, make_engine, unavailable
from gate.prepared import PreparedStatement, read_snapshot
from gate.runs import queries
from tests.conftest import POSTGRES_URL
from tests.test_outage import terminate

RESULTS = {
    "results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 927 / 1319,
                          "exact_match_stderr,strict-match": 0.1 + 0.2}},
    "n-shot": {"gsm8k": 5}, "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
    "config": {"model": "vllm", "model_args": "pretrained=acme/port"}, "lm_eval_version": "0.4.13",
}  # fmt: skip


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_prepared_row_is_the_row_sqlalchemy_reads(client: TestClient, auth: dict, database_url: str) -> None:
    files = [("results", ("results_2026-12-07T10-00-00.json", json.dumps(RESULTS).encode(), "application/json"))]
    form = {"baseline": "qwen3-4b-thinking-2507", "ci": json.dumps({"repository": "acme/port"})}
    imported = client.post("/api/v1/runs/import", files=files, data=form, headers=auth["submit"])
    assert imported.status_code == 201, imported.text
    key = {"run_id": imported.json()["id"]}
    engine = make_engine(database_url)
    with engine.connect() as connection:
        expected = connection.execute(queries.RUN_WITH_CHILDREN.statement, key).one()._asdict()
    engine.dispose()

    async def read() -> dict:
        reader = async_reader(database_url)
        try:
            found = await queries.RUN_WITH_CHILDREN.first(reader, key)
            assert await queries.RUN_WITH_CHILDREN.first(reader, {"run_id": key["run_id"] + 1}) is None
        finally:
            await reader.dispose()
        assert found is not None
        return dict(found._asdict())

    row = asyncio.run(read())
    assert row == expected
    assert row["created_at"].tzinfo is timezone.utc  # UTCDateTime's result processor ran
    assert row["ci_context"] == {"repository": "acme/port"} and row["verdict"] == "pass"
    assert [name for (name,) in row["file_rows"]] == ["results.json"] and len(row["score_rows"]) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlites_rows_are_the_rows_sqlalchemy_reads(client: TestClient, auth: dict, database_url: str) -> None:
    files = [("results", ("results_2026-12-07T10-00-00.json", json.dumps(RESULTS).encode(), "application/json"))]
    imported = client.post("/api/v1/runs/import", files=files, data={"baseline": "qwen3-4b-thinking-2507"},
                           headers=auth["submit"])  # fmt: skip
    key = {"run_id": imported.json()["id"]}
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            for prepared in (queries._RUN, queries._CHILDREN):
                expected = [tuple(row) for row in connection.execute(prepared.statement, key)]
                found = prepared.rows(connection, key)
                assert [tuple(row) for row in found] == expected and expected
            (verdict,) = [row for row in found if row.kind == 1]  # by name
            assert verdict.task == "gsm8k" and verdict[-1]["baseline"] == 0.703  # details: JSON, decoded
    finally:
        engine.dispose()


SQUARE_ROOT = PreparedStatement(select(func.sqrt(bindparam("x", type_=Float)).label("root")))


def on_one_connection(scenario: Callable[[AsyncEngine], Awaitable[None]], url: str = POSTGRES_URL) -> None:
    """Run a scenario on an asyncio reader whose pool holds one connection."""

    async def run() -> None:
        reader = async_reader(url, pool_size=1, max_overflow=0)
        try:
            await scenario(reader)
        finally:
            await reader.dispose()

    asyncio.run(run())


def test_a_driver_error_is_sqlalchemys_and_the_connection_goes_back() -> None:
    async def scenario(reader: AsyncEngine) -> None:
        with pytest.raises(DBAPIError, match="square root of a negative number") as raised:
            await SQUARE_ROOT.first(reader, {"x": -1.0})
        assert not unavailable(raised.value)  # a bad statement is a 500, not an outage's 503
        found = await SQUARE_ROOT.first(reader, {"x": 6.25})  # the one pooled connection, back and usable
        assert found is not None and found.root == 2.5

    on_one_connection(scenario)


BACKEND = PreparedStatement(select(func.pg_backend_pid().label("pid")))


def test_a_connection_the_server_closed_is_replaced_unseen() -> None:
    async def scenario(reader: AsyncEngine) -> None:
        first = await BACKEND.first(reader, {})
        assert first is not None
        await asyncio.to_thread(terminate, first.pid)
        again = await BACKEND.first(reader, {})
        assert again is not None and again.pid != first.pid

    on_one_connection(scenario)


def test_no_transaction_stays_open() -> None:
    """The reads run in autocommit (db.reader): a pooled connection holds no snapshot between requests."""

    async def scenario(reader: AsyncEngine) -> None:
        found = await BACKEND.first(reader, {})
        assert found is not None
        engine = make_engine(POSTGRES_URL)
        try:
            with engine.connect() as connection:
                state = text("SELECT state, backend_xid, backend_xmin FROM pg_stat_activity WHERE pid = :pid")
                assert tuple(connection.execute(state, {"pid": found.pid}).one()) == ("idle", None, None)
        finally:
            engine.dispose()

    on_one_connection(scenario)


AT = PreparedStatement(select(bindparam("at", type_=UTCDateTime()).label("at")))


@pytest.mark.parametrize("database", ["postgres", "sqlite"])
def test_parameters_pass_sqlalchemys_bind_processors(database: str, tmp_path: Path) -> None:
    """rows(): by psycopg on Postgres, by sqlite3 on SQLite; UTCDateTime's processors run both ways."""
    engine = make_engine(POSTGRES_URL if database == "postgres" else f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        with engine.connect() as connection:
            (row,) = AT.rows(connection, {"at": datetime(2026, 12, 7, 23, 0, tzinfo=timezone(timedelta(hours=8)))})
            assert row.at == datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc) and row.at.tzinfo is timezone.utc
            with pytest.raises(StatementError, match="naive datetime"):
                AT.rows(connection, {"at": datetime(2026, 12, 7, 23, 0)})
    finally:
        engine.dispose()


def test_sqlites_read_snapshot_ends_when_its_connection_goes_back(tmp_path: Path) -> None:
    """read_snapshot's transaction holds a snapshot (and with it SQLite's WAL from a checkpoint): it must end with
    the read, also when the read raised, on the same pooled connection."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}", pool_size=1, max_overflow=0)
    try:
        with read_snapshot(engine) as driver:
            assert driver.in_transaction and AT.driver_rows(engine.dialect, driver, {"at": None}) == [(None,)]
        with pytest.raises(ZeroDivisionError), read_snapshot(engine) as again:
            assert again is driver  # the pool's one connection
            1 / 0  # noqa: B018
        pooled = engine.raw_connection()
        assert pooled.driver_connection is driver and not driver.in_transaction
        pooled.close()
    finally:
        engine.dispose()


def test_a_database_that_cannot_be_reached_is_an_outage_not_a_bug() -> None:
    """A read whose pool cannot connect answers 503 (the handler asks db.unavailable), not 500."""

    async def scenario(reader: AsyncEngine) -> None:
        with pytest.raises(OperationalError) as raised:
            await BACKEND.first(reader, {})
        assert unavailable(raised.value)

    on_one_connection(scenario, "postgresql://postgres@127.0.0.1:1/test")


SLEEP = PreparedStatement(select(func.pg_sleep(bindparam("s", type_=Float)).label("slept")))


def test_a_statement_timeout_is_an_outage_on_asyncpg_too() -> None:
    """psycopg raises Postgres's statement timeout (57014) as OperationalError; SQLAlchemy's asyncpg adapter as a
    bare DB-API error, which db.unavailable reads by its SQLSTATE. libpq's own socket knobs in the URL, which
    asyncpg would send to the server as settings, are left out; connect_timeout becomes asyncpg's."""
    assert asyncpg_dsn(f"{POSTGRES_URL}?connect_timeout=7&keepalives=1&keepalives_idle=30")[1] == 7.0

    async def scenario(reader: AsyncEngine) -> None:
        with pytest.raises(DBAPIError, match="statement timeout") as raised:
            await SLEEP.first(reader, {"s": 5.0})
        assert unavailable(raised.value)
        found = await SLEEP.first(reader, {"s": 0.0})  # the connection is still good
        assert found is not None and found.slept is None

    url = f"{POSTGRES_URL}?options=-cstatement_timeout%3D100&connect_timeout=7&keepalives=1&keepalives_idle=30"
    on_one_connection(scenario, url)
