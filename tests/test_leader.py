"""The deployment's leader (gate.deployment.leader) on SQLite and Postgres: one holder at a time, taken over only
once its lease has run out or it stepped down, and raced for by many processes' threads at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gate.db import transaction
from gate.deployment import leader
from gate.deployment.models import Leader
from gate.runs.models import Run, RunStatus
from gate.runs.service import lease_clock

ROUNDS = 30  # races per database


def hold(sessions: sessionmaker[Session], holder: str, ttl_s: float = 30) -> leader.Held | None:
    with transaction(sessions, write=True) as session:
        return leader.hold(session, holder, ttl_s)


def release(sessions: sessionmaker[Session], holder: str) -> bool:
    with transaction(sessions, write=True) as session:
        return leader.release(session, holder)


def row(sessions: sessionmaker[Session]) -> Leader:
    with sessions() as session:
        return session.scalars(select(Leader)).one()


def test_one_holder_renews_others_wait_for_its_lease_or_its_release(sessions: sessionmaker[Session]) -> None:
    assert hold(sessions, "a") == leader.Held(new=True, vacant_s=0.0)  # a fresh deployment: never held
    assert hold(sessions, "b") is None
    assert hold(sessions, "a") == leader.Held(new=False, vacant_s=0.0)
    assert release(sessions, "b") is False  # only the holder steps down
    assert release(sessions, "a") is True
    taken = hold(sessions, "b")
    assert taken is not None and taken.new and taken.vacant_s < 5
    assert row(sessions).holder == "b" and hold(sessions, "a") is None


def test_an_expired_lease_is_taken_over_with_how_long_it_was_vacant(sessions: sessionmaker[Session]) -> None:
    assert hold(sessions, "a", ttl_s=30) is not None
    with transaction(sessions, write=True) as session:  # a's lease ran out 40 s ago (a died)
        past = lease_clock(session) - timedelta(seconds=40)
        session.execute(update(Leader).values(expires_at=past))
    taken = hold(sessions, "b")
    assert taken is not None and taken.new and 40 <= taken.vacant_s < 45
    assert hold(sessions, "a") is None  # back from the dead: it no longer leads
    term = row(sessions).term
    assert hold(sessions, "b") is not None and row(sessions).term == term  # a renewal keeps the term


def test_many_contenders_at_once_make_exactly_one_leader(sessions: sessionmaker[Session]) -> None:
    for round_ in range(ROUNDS):
        holders = [f"r{round_}-{i}" for i in range(6)]
        barrier = threading.Barrier(len(holders))

        def contend(holder: str, barrier: threading.Barrier = barrier) -> leader.Held | None:
            barrier.wait()
            return hold(sessions, holder)

        with ThreadPoolExecutor(len(holders)) as pool:
            results = list(pool.map(contend, holders))
        winners = [h for h, held in zip(holders, results, strict=True) if held is not None]
        assert len(winners) == 1, (round_, winners)
        assert row(sessions).holder == winners[0]
        assert release(sessions, winners[0])


def test_the_leader_that_takes_over_extends_running_leases_by_the_vacancy(sessions: sessionmaker[Session]) -> None:
    """What the app's leader does on taking over: nobody swept while the lead was vacant."""
    from fastapi import FastAPI

    from gate.deployment import background
    from gate.settings import Settings

    with transaction(sessions, write=True) as session:
        now = lease_clock(session)
        run = Run(model="m", backend="hf", tasks=["gsm8k"], options={}, labels=[], status=RunStatus.RUNNING)
        run.lease_expires_at, run.max_attempts = now - timedelta(seconds=5), 3
        session.add(run)
        session.flush()
        run_id = run.id
        session.execute(update(Leader).values(holder="gone", expires_at=now - timedelta(seconds=60), term=7))
    app = FastAPI()
    app.state.settings, app.state.sessions = Settings(), sessions
    started = time.monotonic()
    held = background._hold(app, "new")
    assert held is not None and held.new and 60 <= held.vacant_s < 60 + (time.monotonic() - started) + 5
    with sessions() as session:
        expires = session.get_one(Run, run_id).lease_expires_at
        assert expires is not None and expires > lease_clock(session) + timedelta(seconds=50)
