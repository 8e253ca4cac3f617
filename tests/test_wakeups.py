"""LISTEN/NOTIFY between the API processes of one deployment (Postgres): a claim waiting in one process is answered
as soon as another queues a run, not at its next look; SQLite and a deployment with it turned off poll."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gate import db, migrate
from gate.app import create_app
from gate.db import make_engine, make_session_factory
from gate.deployment.wakeups import LISTENER_NAME, Wakeups
from gate.settings import Settings
from tests.conftest import make_token, postgres_schema

LOOK_BOUND_S = db.WOKEN_LOOK_S  # a listening waiter's own look: a wake-up must come well before it


async def woken_within(wakeups: Wakeups, channel: str, act: threading.Thread, timeout_s: float) -> float:
    ticket = wakeups.ticket(channel)
    started = time.monotonic()
    act.start()
    await wakeups.wait(ticket, timeout_s, poll_s=timeout_s)
    act.join()
    return time.monotonic() - started


# SQLite has no NOTIFY (its waiters poll: test_claims_poll_without_a_listener): these run on Postgres only
POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@POSTGRES_ONLY
def test_a_commit_wakes_the_listener_a_rollback_or_another_schema_does_not_and_it_listens_again(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)

    def notify(bind: Engine, commit: bool) -> threading.Thread:
        def act() -> None:
            time.sleep(0.2)  # after the waiter took its ticket and waits
            with make_session_factory(bind)() as session:
                db.notify(session, db.QUEUED)
                session.commit() if commit else session.rollback()

        return threading.Thread(target=act)

    async def scenario() -> tuple[float, float, float, float]:
        wakeups = Wakeups.start(engine)
        try:
            for _ in range(100):
                if wakeups.listening:
                    break
                await asyncio.sleep(0.05)
            assert wakeups.listening
            committed = await woken_within(wakeups, db.QUEUED, notify(engine, True), timeout_s=10)
            rolled_back = await woken_within(wakeups, db.QUEUED, notify(engine, False), timeout_s=1.5)
            with postgres_schema() as url:  # another deployment in the same database
                neighbour = make_engine(url)
                elsewhere = await woken_within(wakeups, db.QUEUED, notify(neighbour, True), timeout_s=1.5)
                neighbour.dispose()
            with engine.begin() as connection:  # the database drops the listening connection
                ended = connection.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": LISTENER_NAME},  # this process's listener only: other test groups share the server
                )
                assert ended.scalar_one() is True
            for _ in range(100):
                await asyncio.sleep(0.05)
                if wakeups.listening:
                    break
            again = await woken_within(wakeups, db.QUEUED, notify(engine, True), timeout_s=10)
            return committed, rolled_back, elsewhere, again
        finally:
            wakeups.stop()
            engine.dispose()

    committed, rolled_back, elsewhere, again = asyncio.run(scenario())
    assert committed < 2, committed
    assert rolled_back >= 1.5  # nothing committed: the waiter slept to its timeout
    assert elsewhere >= 1.5  # a deployment in another schema committed: not this one's business
    assert again < 2, again


def claim_latency(database_url: str, listen: bool) -> float:
    """Two API processes' apps on one database: a claim long-polls on one, a run is queued through the other; how
    long after the run was queued the claim answered."""
    settings = Settings(database_url=database_url, lease_s=30, listen_notify=listen)
    worker, submit = make_token(database_url, "w", "worker"), make_token(database_url, "s", "submit")
    body = {"model": "m", "backend": "hf", "tasks": ["gsm8k"], "options": {"limit": 1}}
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as other:
        for _ in range(100):  # both listening (a polling app answers anyway)
            if not listen or all(app.app.state.wakeups.listening for app in (one, other)):
                break
            time.sleep(0.05)

        def claim() -> tuple[int, float]:
            response = one.post(
                "/api/v1/workers/claim",
                json={"name": "w1", "backend": "hf", "wait_s": 20},
                headers={"Authorization": f"Bearer {worker}"},
            )
            return response.status_code, time.monotonic()

        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(claim)
            time.sleep(1.5)  # the claim waits: no run yet
            queued = other.post("/api/v1/runs", json=body, headers={"Authorization": f"Bearer {submit}"})
            queued_at = time.monotonic()
            assert queued.status_code == 202, queued.text
            status, answered_at = waiting.result(timeout=30)
    assert status == 200
    return answered_at - queued_at


@POSTGRES_ONLY
def test_a_claim_in_one_process_is_woken_by_a_run_queued_in_another(database_url: str) -> None:
    # listening, a waiting claim looks only when woken or every WOKEN_LOOK_S: answering well before that is NOTIFY
    assert claim_latency(database_url, listen=True) < LOOK_BOUND_S / 5


def test_claims_poll_without_a_listener(database_url: str) -> None:
    """SQLite, or Postgres with listen_notify off (a transaction-mode pooler): a claim looks every 0.1 s."""
    assert claim_latency(database_url, listen=False) < 1
