"""A Hypothesis state machine over the run lifecycle, on SQLite and Postgres.

Invariants: at most one live lease per run; terminal states never change; at most one result per run;
every accepted write carries the current lease.
"""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import delete, func, select, update

from gate.checks.accuracy.models import SampleRecord
from gate.checks.accuracy.results import parse_results
from gate.db import transaction, utcnow
from gate.errors import Conflict
from gate.runs import service as runs
from gate.runs.models import Artifact, Run, RunStatus, RunTask, Score, TaskVerdict

RESULTS = parse_results(
    json.dumps(
        {
            "results": {"gsm8k": {"exact_match,strict-match": 0.5, "exact_match_stderr,strict-match": 0.1}},
            "n-shot": {"gsm8k": 5},
            "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
            "config": {},
        }
    ).encode()
)
TERMINAL = set(RunStatus.TERMINAL)


def build_machine(sessions):
    class Lifecycle(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            self.runs: dict[int, dict] = {}  # run id -> the model: status, current token, old tokens
            with transaction(sessions, write=True) as session:  # each example starts from an empty queue
                for table in (Artifact, SampleRecord, TaskVerdict, Score, RunTask, Run):
                    session.execute(delete(table))
                self.workers = [
                    runs.heartbeat_worker(session, f"w{i}-{id(self)}", [], "hf", {}, token_name="t").id
                    for i in range(2)
                ]

        def write(self, fn, *args, **kwargs):
            with transaction(sessions, write=True) as session:
                return fn(session, *args, **kwargs)

        @rule()
        def enqueue(self) -> None:
            run, _ = self.write(
                runs.submit,
                runs.RunRequest(model="m", tasks=["gsm8k"], backend="hf"),
                submitted_by="t",
                admin=False,
                max_attempts=2,
            )
            self.runs[run.id] = {"status": "queued", "token": None, "old": [], "attempts": 0}

        @rule(worker=st.integers(0, 1))
        def claim(self, worker: int) -> None:
            def do(session):
                from gate.runs.models import Worker

                mine = session.scalars(
                    select(Run.id).where(Run.id.in_(list(self.runs) or [0]), Run.status == "queued")
                ).all()
                lease = runs.claim(session, session.get(Worker, self.workers[worker]), 60)
                return lease, mine

            lease, mine = self.write(do)
            if lease is None:
                assert not mine
                return
            model = self.runs[lease.run.id]
            assert model["status"] == "queued"
            model.update(status="running", token=lease.token, attempts=model["attempts"] + 1)

        def pick(self, data, status: str | None = None):
            candidates = [i for i, m in self.runs.items() if status is None or m["status"] == status]
            return data.draw(st.sampled_from(candidates)) if candidates else None

        def attempt(self, run_id: int, token: str | None, fn, *args, replay_of: str | None = None) -> bool:
            """Run a worker write; check it was accepted exactly when the token is the live one, or when it
            replays the report that ended the run (idempotent: accepted, changes nothing)."""
            model = self.runs[run_id]
            live = model["status"] == "running" and token is not None and token == model["token"]
            replay = replay_of is not None and model["status"] == replay_of and token == model["token"]
            try:
                self.write(fn, run_id, token or "none", *args)
                accepted = True
            except Conflict:
                accepted = False
            assert accepted == (live or replay), (model, token)
            return accepted and live

        @precondition(lambda self: self.runs)
        @rule(data=st.data(), stale=st.booleans())
        def renew(self, data, stale: bool) -> None:
            run_id = self.pick(data)
            model = self.runs[run_id]
            token = (model["old"][-1] if model["old"] else "forged") if stale else model["token"]
            self.attempt(run_id, token, runs.renew, 60)

        @precondition(lambda self: self.runs)
        @rule(data=st.data(), stale=st.booleans())
        def finish(self, data, stale: bool) -> None:
            run_id = self.pick(data)
            model = self.runs[run_id]
            token = (model["old"][-1] if model["old"] else "forged") if stale else model["token"]
            if self.attempt(
                run_id, token, runs.complete, RESULTS, [], {"results.json": b"{}"}, {}, None, replay_of="succeeded"
            ):
                model["status"] = "succeeded"

        @precondition(lambda self: self.runs)
        @rule(data=st.data(), kind=st.sampled_from(["infrastructure", "user"]))
        def fail(self, data, kind: str) -> None:
            run_id = self.pick(data)
            model = self.runs[run_id]
            if self.attempt(run_id, model["token"], runs.fail, "boom", kind, replay_of="failed"):
                retry = kind == "infrastructure" and model["attempts"] < 2
                model["old"].append(model["token"])
                model.update(status="queued" if retry else "failed", token=None if retry else model["token"])

        @precondition(lambda self: self.runs)
        @rule(data=st.data())
        def cancel(self, data) -> None:
            run_id = self.pick(data)
            model = self.runs[run_id]
            try:
                self.write(runs.cancel, run_id)
                assert model["status"] not in TERMINAL
                model["status"] = "cancelled"
            except Conflict:
                assert model["status"] in TERMINAL

        @precondition(lambda self: any(m["status"] == "running" for m in self.runs.values()))
        @rule(data=st.data())
        def expire(self, data) -> None:
            run_id = self.pick(data, "running")
            model = self.runs[run_id]
            self.write(
                lambda s: s.execute(
                    update(Run).where(Run.id == run_id).values(lease_expires_at=utcnow() - timedelta(seconds=1))
                )
            )
            self.write(runs.reap, 24 * 3600)
            model["old"].append(model["token"])
            model.update(
                status="queued" if model["attempts"] < 2 else "failed",
                token=None if model["attempts"] < 2 else model["token"],
            )

        @invariant()
        def store_agrees(self) -> None:
            if not getattr(self, "runs", None):
                return
            with sessions() as session:
                stored = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(list(self.runs))))}
                scores = dict(
                    session.execute(
                        select(Score.run_id, func.count())
                        .where(Score.run_id.in_(list(self.runs)))
                        .group_by(Score.run_id)
                    ).all()
                )
                for run_id, model in self.runs.items():
                    run = stored[run_id]
                    assert run.status == model["status"], (run_id, run.status, model)
                    if run.status == "running":
                        assert runs.holds(run, model["token"]) and run.lease_expires_at is not None
                    assert scores.get(run_id, 0) == (1 if run.status == "succeeded" else 0)
                live = [r.lease_token for r in stored.values() if r.status == "running"]
                assert len(live) == len(set(live))

    return Lifecycle


def test_lifecycle_invariants(sessions) -> None:
    machine = build_machine(sessions)
    machine.TestCase.settings = settings(
        max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
    )
    machine.TestCase().runTest()
