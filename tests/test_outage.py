"""The database goes away: requests answer 503 with Retry-After (no 500, no traceback in the log), and everything
works again when it is back. Runs on a Postgres cluster of the test's own, which the test stops and starts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gate.db import async_reader, make_engine
from tests.conftest import POSTGRES_URL
from tests.own_postgres import OwnPostgres
from tests.processes import Api, server

RUN = {"model": "Qwen/Qwen3-4B-Thinking-2507", "baseline": "qwen3-4b-thinking-2507", "tasks": ["gsm8k"]}


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


def test_an_outage_answers_503_and_recovers(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    with server(own_postgres.url, tmp_path) as s:
        api = Api(s)
        first = api.submit(**RUN)
        own_postgres.stop()
        for method, path, body in (
            ("GET", "/api/v1/runs", None),
            ("POST", "/api/v1/runs", RUN),
            ("GET", f"/api/v1/runs/{first['id']}", None),
            ("POST", "/api/v1/workers/claim", {"name": "w", "backend": "vllm", "wait_s": 0}),
        ):
            scope = "worker" if "workers" in path else "admin"
            answer = api.http.request(method, path, json=body, headers=api.headers[scope])
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["Retry-After"] == "5"
            assert answer.json()["code"] == "unavailable"
        page = httpx.get(f"{s.url}/runs", headers=api.headers["admin"])
        assert page.status_code == 503 and "text/html" in page.headers["content-type"]
        assert httpx.get(f"{s.url}/healthz").status_code == 200  # the process is alive; its database is not
        own_postgres.start()
        assert api.run(first["id"])["status"] == "queued"
        assert api.submit(**RUN)["id"] == first["id"] + 1
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "Traceback" not in log and " 500 " not in log


def test_a_lease_does_not_lapse_while_the_database_is_away(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """An outage longer than the lease: the worker could not renew, so the reaper must not hand its run on."""
    with server(own_postgres.url, tmp_path, lease_s="5") as s:
        api = Api(s)
        run = api.submit(**RUN, backend="hf")
        claim = {"name": "w", "backend": "hf", "wait_s": 0}
        lease = api.http.post("/api/v1/workers/claim", json=claim, headers=api.headers["worker"]).json()["lease"]
        own_postgres.stop()
        time.sleep(8)  # longer than the 5 s lease
        own_postgres.start()
        time.sleep(1.5)  # the reaper sweeps every 0.5 s
        beat = api.http.post(
            f"/api/v1/workers/runs/{run['id']}/heartbeat", json={"lease": lease}, headers=api.headers["worker"]
        )
        assert beat.status_code == 200, beat.text
        assert api.run(run["id"])["status"] == "running"


BACKEND_PID = text("SELECT pg_backend_pid()")


def terminate(pid: int) -> None:
    """Terminate a backend and wait until it has exited: its last message is on the socket once it is gone. Polling
    pg_stat_activity in one transaction would see that transaction's cached snapshot, the backend forever there."""
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.connect() as conn:
            ended = text("SELECT pg_terminate_backend(:pid, :wait_ms)")  # true once the process is gone
            assert conn.execute(ended, {"pid": pid, "wait_ms": 60_000}).scalar_one(), f"backend {pid} still runs"
    finally:
        admin.dispose()


def test_a_pooled_connection_the_server_closed_is_replaced_unseen() -> None:
    """The pool checks a connection's socket, not the server, when it hands one out: one the server terminated while
    it sat in the pool is replaced, and the statement that wanted it runs."""
    engine = make_engine(POSTGRES_URL, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            pid = conn.execute(BACKEND_PID).scalar_one()
        terminate(pid)
        with engine.connect() as conn:
            assert conn.execute(BACKEND_PID).scalar_one() != pid
    finally:
        engine.dispose()


def test_the_asyncio_readers_pool_replaces_a_closed_connection_too() -> None:
    """The same check on the asyncio connections the hot reads use on Postgres (db.async_reader)."""

    async def scenario() -> None:
        engine = async_reader(POSTGRES_URL, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as conn:
                pid = (await conn.execute(BACKEND_PID)).scalar_one()
            await asyncio.to_thread(terminate, pid)
            async with engine.connect() as conn:
                assert (await conn.execute(BACKEND_PID)).scalar_one() != pid
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_the_first_request_after_a_quiet_restart_is_answered(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    """Postgres restarts while nobody asks: the pooled connections are dead, and the next request does not see it."""
    with server(own_postgres.url, tmp_path) as s:
        api = Api(s)
        first = api.submit(**RUN)
        own_postgres.stop()
        own_postgres.start()
        assert api.run(first["id"])["status"] == "queued"
        assert api.submit(**RUN)["id"] == first["id"] + 1
