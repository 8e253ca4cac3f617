"""Transitions of one run raced against each other, on SQLite and Postgres.

Each round queues and claims a run, then two threads, each in its own transaction as the API opens them, start
together at a barrier. Exactly one ending may be recorded: the loser is refused with Conflict (a replay of the
same upload returns the stored run), and the run's history shows the winner's ending once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from gate.checks.accuracy.models import SampleRecord
from gate.checks.accuracy.results import ParsedResults, SampleOutcome, parse_results
from gate.db import transaction, utcnow
from gate.errors import Conflict
from gate.notifications.models import Notification
from gate.runs import service as runs
from gate.runs.models import Run, RunStatus, Score, TaskVerdict

ROUNDS = 50  # per race kind and database: enough to interleave both sides many times, a few seconds each
HTTP_ROUNDS = 20  # the same race through the API, to see the loser's answer
BASELINE = "qwen3-4b-thinking-2507"  # gates gsm8k: a successful upload records a verdict too
CALLBACK = "https://ci.example/hook"  # every ending of these runs writes one outbox row


@dataclass(frozen=True)
class Upload:
    parsed: ParsedResults
    samples: list[SampleOutcome]
    files: dict[str, bytes]


def make_upload(score: float) -> Upload:
    content = json.dumps(
        {
            "results": {"gsm8k": {"exact_match,strict-match": score, "exact_match_stderr,strict-match": 0.01}},
            "n-shot": {"gsm8k": 5},
            "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
            "config": {},
        }
    ).encode()
    samples = [
        SampleOutcome("gsm8k", "strict-match", doc_id, f"h{doc_id}", doc_id % 2 == 0, "42", "42", None, None)
        for doc_id in range(2)
    ]
    return Upload(parse_results(content), samples, {"results.json": content})


UPLOAD, OTHER_UPLOAD = make_upload(0.70), make_upload(0.61)
Outcome = Any  # what a side returned, or the Conflict that refused it


@pytest.fixture
def race() -> Iterator[Callable[[Callable[[], Any], Callable[[], Any]], tuple[Outcome, Outcome]]]:
    """Run two calls at once (released together by a barrier); a Conflict is returned, anything else raised."""
    with ThreadPoolExecutor(2) as pool:

        def run_both(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Outcome, Outcome]:
            barrier = threading.Barrier(2)

            def side(call: Callable[[], Any]) -> Outcome:
                barrier.wait(timeout=10)
                try:
                    return call()
                except Conflict as refused:
                    return refused

            one, two = pool.submit(side, first), pool.submit(side, second)
            return one.result(timeout=60), two.result(timeout=60)

        yield run_both


def in_transaction(sessions: sessionmaker[Session], fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """A call as an API request makes it: its own session, a write transaction, committed on return."""

    def call() -> Any:
        with transaction(sessions, write=True) as session:
            result = fn(session, *args)
            return result.status if isinstance(result, Run) else result

    return call


def claimed_run(sessions: sessionmaker[Session], priority: int, max_attempts: int = 3) -> tuple[int, str]:
    """A new run with a callback, leased to a worker. Its priority puts it ahead of the runs earlier rounds
    left queued."""
    with transaction(sessions, write=True) as session:
        run, _ = runs.submit(
            session,
            runs.RunRequest(
                model="acme/port",
                tasks=["gsm8k"],
                backend="hf",
                baseline=BASELINE,
                priority=priority,
                callback_url=CALLBACK,
            ),
            submitted_by="t",
            admin=False,
            max_attempts=max_attempts,
        )
        worker = runs.heartbeat_worker(session, "w", [], "hf", {}, token_name="t")
        lease = runs.claim(session, worker, 60)
        assert lease is not None and lease.run.id == run.id
        return run.id, lease.token


def complete(sessions: sessionmaker[Session], run_id: int, token: str, upload: Upload) -> Callable[[], Any]:
    return in_transaction(sessions, runs.complete, run_id, token, upload.parsed, upload.samples, upload.files, {}, None)


def history(sessions: sessionmaker[Session], run_id: int) -> dict[str, Any]:
    """What the store holds about the run's ending."""
    with sessions() as session:
        run = session.get(Run, run_id)
        assert run is not None

        def count(table: Any) -> int:
            return session.scalar(select(func.count()).select_from(table).where(table.run_id == run_id)) or 0

        values = session.scalars(select(Score.value).where(Score.run_id == run_id)).all()
        return {
            "status": run.status,
            "attempts": run.attempts,
            "scores": sorted(values),
            "verdicts": count(TaskVerdict),
            "samples": count(SampleRecord),
            "notifications": count(Notification),
        }


def assert_one_ending(sessions: sessionmaker[Session], run_id: int, status: str, score: float | None = None) -> None:
    ended = status in RunStatus.TERMINAL
    succeeded = status == RunStatus.SUCCEEDED
    assert history(sessions, run_id) == {
        "status": status,
        "attempts": 1,
        "scores": [score] if succeeded else [],
        "verdicts": 1 if succeeded else 0,
        "samples": 2 if succeeded else 0,
        "notifications": 1 if ended else 0,
    }


def refused(outcome: Outcome, why: str) -> bool:
    return isinstance(outcome, Conflict) and why in outcome.message


def test_cancel_against_complete(sessions, race) -> None:
    wins = {"cancel": 0, "complete": 0}
    for n in range(ROUNDS):
        run_id, token = claimed_run(sessions, priority=n)
        cancelled, completed = race(
            in_transaction(sessions, runs.cancel, run_id), complete(sessions, run_id, token, UPLOAD)
        )
        if cancelled == RunStatus.CANCELLED:
            assert refused(completed, "was cancelled"), completed
            assert_one_ending(sessions, run_id, RunStatus.CANCELLED)
            wins["cancel"] += 1
        else:
            assert completed == RunStatus.SUCCEEDED and refused(cancelled, "is succeeded already"), cancelled
            assert_one_ending(sessions, run_id, RunStatus.SUCCEEDED, 0.70)
            wins["complete"] += 1
    assert sum(wins.values()) == ROUNDS


def expire_lease(sessions: sessionmaker[Session], run_id: int) -> None:
    with transaction(sessions, write=True) as session:
        session.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=utcnow() - timedelta(hours=1)))


def test_complete_against_reap_of_an_expired_lease(sessions, race) -> None:
    for n in range(ROUNDS):
        max_attempts = 1 + n % 2  # the reaper requeues (attempts remain) or fails the run (none remain)
        run_id, token = claimed_run(sessions, priority=n, max_attempts=max_attempts)
        expire_lease(sessions, run_id)
        completed, reaped = race(
            complete(sessions, run_id, token, UPLOAD), in_transaction(sessions, runs.reap, 24 * 3600.0)
        )
        if completed == RunStatus.SUCCEEDED:
            assert reaped == (0, 0)
            assert_one_ending(sessions, run_id, RunStatus.SUCCEEDED, 0.70)
        else:
            assert reaped == (1, 0) and refused(completed, "lease is stale" if max_attempts > 1 else "is failed")
            assert_one_ending(sessions, run_id, RunStatus.QUEUED if max_attempts > 1 else RunStatus.FAILED)


def test_two_different_uploads_of_one_lease(sessions, race) -> None:
    for n in range(ROUNDS):
        run_id, token = claimed_run(sessions, priority=n)
        first, second = race(complete(sessions, run_id, token, UPLOAD), complete(sessions, run_id, token, OTHER_UPLOAD))
        if first == RunStatus.SUCCEEDED:
            assert refused(second, "different result recorded already"), second
            assert_one_ending(sessions, run_id, RunStatus.SUCCEEDED, 0.70)
        else:
            assert second == RunStatus.SUCCEEDED and refused(first, "different result recorded already"), first
            assert_one_ending(sessions, run_id, RunStatus.SUCCEEDED, 0.61)


def test_the_same_upload_replayed_at_once(sessions, race) -> None:
    for n in range(ROUNDS):
        run_id, token = claimed_run(sessions, priority=n)
        outcomes = race(complete(sessions, run_id, token, UPLOAD), complete(sessions, run_id, token, UPLOAD))
        assert outcomes == (RunStatus.SUCCEEDED, RunStatus.SUCCEEDED)  # the replay returns the stored run
        assert_one_ending(sessions, run_id, RunStatus.SUCCEEDED, 0.70)


def test_cancel_against_upload_over_http(client: TestClient, auth: dict[str, dict[str, str]], race) -> None:
    for n in range(HTTP_ROUNDS):
        body = {"model": "acme/port", "backend": "hf", "tasks": ["gsm8k"], "baseline": BASELINE, "priority": n}
        run_id = client.post("/api/v1/runs", json=body, headers=auth["submit"]).json()["id"]
        worker = {"name": "w", "backend": "hf", "wait_s": 0}
        lease = client.post("/api/v1/workers/claim", json=worker, headers=auth["worker"]).json()
        assert lease["run_id"] == run_id
        cancel = partial(client.post, f"/api/v1/runs/{run_id}/cancel", headers=auth["submit"])
        upload = partial(
            client.post,
            f"/api/v1/workers/runs/{run_id}/complete",
            data={"lease": lease["lease"]},
            files=[("results", ("results.json", UPLOAD.files["results.json"]))],
            headers=auth["worker"],
        )
        cancelled, completed = race(cancel, upload)
        run = client.get(f"/api/v1/runs/{run_id}", headers=auth["read"]).json()
        if cancelled.status_code == 200:
            assert completed.status_code == 409 and completed.json()["detail"] == f"run {run_id} was cancelled"
            assert (run["status"], run["scores"]) == ("cancelled", [])
        else:
            assert completed.status_code == 200, completed.text
            assert cancelled.status_code == 409 and cancelled.json()["detail"] == f"run {run_id} is succeeded already"
            assert (run["status"], len(run["scores"])) == ("succeeded", 1)
