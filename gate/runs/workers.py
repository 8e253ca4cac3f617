"""The worker protocol: claim (long-poll), heartbeat, watch, complete, fail, release.

Workers only call out over HTTP. Every write carries the lease token of its attempt; a stale or foreign
token gets 409, so a worker back from the dead cannot overwrite the attempt that replaced it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from gate import db
from gate.auth.deps import Reader, WorkerAuth
from gate.checks.accuracy.uploads import parse_upload
from gate.db import transaction
from gate.deps import RunId, SessionDep, SettingsDep, write_turn
from gate.errors import InvalidInput
from gate.runs import service as runs
from gate.runs.models import Run, RunStatus, Worker
from gate.runs.schemas import MODEL_FINGERPRINT, RunOut, WorkerOut
from gate.verdicts import trail

router = APIRouter(prefix="/workers", tags=["workers"])
# Without a listener (SQLite, or Postgres while the listening connection is down) waiters poll:
CLAIM_POLL_S = 0.1  # how often a waiting claim looks for work: bounds queue latency
WATCH_POLL_S = 0.5  # how often a watch looks for a cancel: well inside the 5 s promise
MAX_COUNT = 2**31 - 1  # progress is kept in Integer columns, 32-bit on Postgres


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    backend: Literal["vllm", "vllm-ascend", "hf", "openai"]
    labels: list[str] = Field(default_factory=list, max_length=32)
    info: dict[str, Any] = Field(default_factory=dict)
    wait_s: float = Field(default=20.0, ge=0, le=60)
    draining: bool = False


class ClaimedRun(BaseModel):
    run_id: int
    kind: str  # gate.checks.KINDS: which of the worker's parts executes it
    lease: str
    lease_expires_at: datetime
    lease_s: float
    attempt: int
    model: str
    backend: str
    tasks: list[str]
    options: dict[str, Any]
    # per gated task, the baseline's band and early-stop setting: a sharded accuracy run asks its stop rules
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)


def stop_rules(run: Run) -> dict[str, dict[str, Any]]:
    """What the worker needs to stop a run early: the baseline entry of each of its tasks."""
    if run.baseline is None:
        return {}
    early = ((run.baseline.checks or {}).get("accuracy") or {}).get("early_stop") or {}
    return {
        score.task: {
            "metric": score.metric,
            "baseline": score.score,
            "tolerance_pp": score.tolerance_pp,
            "two_sided": score.two_sided,
            "early_stop": early.get(score.task),
        }
        for score in run.baseline.scores
        if score.task in run.tasks
    }


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100)
    done: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    total: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    log_tail: str | None = Field(default=None, max_length=200_000)
    estimate: dict[str, Any] | None = None  # a sharded run's running estimate (gate.verdicts.trail)

    @field_validator("estimate")
    @classmethod
    def _estimate(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (problem := trail.problem(value)):
            raise ValueError(problem)
        return value


class HeartbeatReply(BaseModel):
    lease_expires_at: datetime


class Failure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=10_000)
    kind: Literal["infrastructure", "user", "timeout"]
    log_tail: str | None = Field(default=None, max_length=200_000)
    environment: dict[str, Any] | None = None
    model_fingerprint: str | None = Field(default=None, pattern=MODEL_FINGERPRINT)


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100)


WatchState = Literal["running", "cancelled", "lost"]


class WatchReply(BaseModel):
    state: WatchState


def _try_claim(request: Request, body: ClaimRequest, worker_id: int) -> ClaimedRun | None:
    settings = request.app.state.settings
    sessions = request.app.state.sessions
    with sessions() as session:  # cheap unlocked look first: idle polls must not take the write lock
        waiting = session.scalar(
            select(Run.id).where(Run.status == RunStatus.QUEUED, Run.backend == body.backend).limit(1)
        )
    if waiting is None:
        return None
    with transaction(sessions, write=True) as session:
        worker = session.get_one(Worker, worker_id)
        lease = runs.claim(session, worker, settings.lease_s)
        if lease is None:
            return None
        run = lease.run
        return ClaimedRun(
            run_id=run.id,
            kind=run.kind,
            lease=lease.token,
            lease_expires_at=lease.expires_at,
            lease_s=settings.lease_s,
            attempt=run.attempts,
            model=run.model,
            backend=run.backend,
            tasks=run.tasks,
            options=run.options,
            rules=stop_rules(run),
        )


@router.post("/claim", response_model=ClaimedRun, responses={204: {"description": "no work within wait_s"}})
async def claim(body: ClaimRequest, request: Request, principal: WorkerAuth) -> Any:
    """Lease the next run this worker can take, waiting up to wait_s for one to be queued."""

    def register() -> int:
        with transaction(request.app.state.sessions, write=True) as session:
            worker = runs.heartbeat_worker(
                session, body.name, body.labels, body.backend, body.info, body.draining, token_name=principal.name
            )
            return worker.id

    async with write_turn(request.app):
        worker_id = await run_in_threadpool(register)
    deadline = time.monotonic() + body.wait_s
    wakeups = request.app.state.wakeups
    while not body.draining:
        ticket = wakeups.ticket(db.QUEUED)
        async with write_turn(request.app):
            claimed = await run_in_threadpool(_try_claim, request, body, worker_id)
        if claimed is not None:
            return claimed
        if (left_s := deadline - time.monotonic()) <= 0 or await request.is_disconnected():
            break
        await wakeups.wait(ticket, min(left_s, db.WOKEN_LOOK_S), CLAIM_POLL_S)
    return Response(status_code=204)


@router.post("/runs/{run_id}/heartbeat", response_model=HeartbeatReply)
def heartbeat(
    run_id: RunId, body: Heartbeat, session: SessionDep, settings: SettingsDep, _: WorkerAuth
) -> HeartbeatReply:
    """Renew the lease and report progress; 409 when the run was cancelled or handed to another attempt."""
    run = runs.renew(
        session,
        run_id,
        body.lease,
        settings.lease_s,
        done=body.done,
        total=body.total,
        log_tail=body.log_tail,
        estimate=body.estimate,
    )
    assert run.lease_expires_at is not None  # a renewed lease has an expiry
    return HeartbeatReply(lease_expires_at=run.lease_expires_at)


@router.get("/runs/{run_id}/watch", response_model=WatchReply)
async def watch(
    run_id: RunId,
    request: Request,
    _: WorkerAuth,
    lease: Annotated[str, Header(alias="X-Gate-Lease", min_length=1, max_length=100)],
    wait_s: Annotated[float, Query(ge=0, le=60)] = 20.0,
) -> WatchReply:
    """Long-poll: answers as soon as the run is cancelled or the lease is no longer this worker's."""

    def state() -> WatchState:
        with request.app.state.sessions() as session:
            run = session.get(Run, run_id)
            if run is None or not runs.holds(run, lease):
                return "lost"
            if run.status == RunStatus.CANCELLED:
                return "cancelled"
            return "running" if run.status == RunStatus.RUNNING else "lost"

    deadline = time.monotonic() + wait_s
    wakeups = request.app.state.wakeups
    while True:
        ticket = wakeups.ticket(db.CHANGED)
        current = await run_in_threadpool(state)
        left_s = deadline - time.monotonic()
        if current != "running" or left_s <= 0 or await request.is_disconnected():
            return WatchReply(state=current)
        await wakeups.wait(ticket, min(left_s, db.WOKEN_LOOK_S), WATCH_POLL_S)


@router.post("/runs/{run_id}/complete", response_model=RunOut)
async def complete(
    run_id: RunId,
    request: Request,
    settings: SettingsDep,
    _: WorkerAuth,
    lease: Annotated[str, Form(min_length=1, max_length=100)],
    results: Annotated[UploadFile, File()],
    samples: Annotated[list[UploadFile] | None, File()] = None,
    environment: Annotated[str | None, Form(max_length=100_000)] = None,
    log_tail: Annotated[str | None, Form(max_length=200_000)] = None,
    model_fingerprint: Annotated[str | None, Form(pattern=MODEL_FINGERPRINT)] = None,
) -> RunOut:
    """Upload the attempt's lm-eval results and samples. Idempotent: a replay returns the stored run."""
    parsed, outcomes, files = await parse_upload(results, samples or [], settings.max_upload_bytes)
    try:
        env = json.loads(environment) if environment else {}
    except json.JSONDecodeError:
        raise InvalidInput("environment is not valid JSON", field="environment") from None
    if not isinstance(env, dict):
        raise InvalidInput("environment must be a JSON object", field="environment")

    def store() -> RunOut:  # the write lock is taken only once the upload is parsed and checked
        with transaction(request.app.state.sessions, write=True) as session:
            run = runs.complete(session, run_id, lease, parsed, outcomes, files, env, log_tail, model_fingerprint)
            return RunOut.of(run)

    async with write_turn(request.app):
        return await run_in_threadpool(store)


@router.post("/runs/{run_id}/fail", response_model=RunOut)
def fail(run_id: RunId, body: Failure, session: SessionDep, _: WorkerAuth) -> RunOut:
    """End the attempt: infrastructure failures are retried while attempts remain, others end the run."""
    run = runs.fail(
        session, run_id, body.lease, body.reason, body.kind, body.log_tail, body.environment, body.model_fingerprint
    )
    return RunOut.of(run)


@router.post("/runs/{run_id}/release", response_model=RunOut)
def release(run_id: RunId, body: Release, session: SessionDep, _: WorkerAuth) -> RunOut:
    """A draining worker hands back a run it will not finish: queued again at once."""
    return RunOut.of(runs.release(session, run_id, body.lease))


@router.get("", response_model=list[WorkerOut])
def list_workers(session: SessionDep, _: Reader) -> list[WorkerOut]:
    return [WorkerOut.of(w) for w in session.scalars(select(Worker).order_by(Worker.name))]
