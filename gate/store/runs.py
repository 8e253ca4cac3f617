"""The run lifecycle in one place: submit, import, claim, renew, complete, fail, release, cancel, expire.

Every transition is guarded on the state it leaves (and, for worker writes, on the current lease token):
a write that does not match is refused loudly, never applied to a run that moved on.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import exc, func, select
from sqlalchemy.orm import Session, object_session

from gate.core import options as run_options
from gate.core.results import ParsedResults, SampleOutcome
from gate.errors import Conflict, Forbidden, InvalidInput, NotFound
from gate.store import baselines, notifications, recording
from gate.store.models import Baseline, Run, RunStatus, RunTask, Worker, utcnow

CLAIM_SCAN_BATCH = 100
LOG_TAIL_LINES = 200


@dataclass
class RunRequest:
    model: str
    tasks: list[str]
    backend: str = "vllm"
    baseline: str | None = None
    labels: list[str] = field(default_factory=list)
    priority: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    ci_context: dict[str, Any] | None = None
    callback_url: str | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Lease:
    run: Run
    token: str
    expires_at: datetime


def known_tasks(session: Session, baseline: Baseline | None) -> set[str]:
    if baseline is not None:
        return {s.task for s in baseline.scores}
    return {s.task for b in baselines.all_baselines(session) for s in b.scores}


def _baseline_for(session: Session, name: str | None) -> Baseline | None:
    return None if name is None else baselines.get(session, name)


def submit(
    session: Session,
    request: RunRequest,
    *,
    submitted_by: str | None,
    admin: bool,
    max_attempts: int,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Queue a run. Returns (run, created): a repeated Idempotency-Key returns the first run."""
    fingerprint = request.fingerprint()
    if idempotency_key is not None:
        existing = session.scalar(select(Run).where(Run.idempotency_key == idempotency_key))
        if existing is not None:
            return _same_request(existing, fingerprint), False

    baseline = _baseline_for(session, request.baseline)
    allowed = known_tasks(session, baseline)
    unknown = [task for task in request.tasks if task not in allowed]
    if unknown:
        where = f"baseline {baseline.name!r}" if baseline else "any baseline"
        raise InvalidInput(f"unknown task(s) {', '.join(unknown)}: not in {where}", field="tasks")
    resolved = run_options.resolve(run_options.RunOptions.model_validate(request.options))
    labels = sorted(set(request.labels))
    code_tasks = sorted(set(request.tasks) & run_options.CODE_EXECUTING_TASKS)
    if (code_tasks or resolved.model_args.trust_remote_code) and not admin:
        what = f"code-executing task(s) {', '.join(code_tasks)}" if code_tasks else "trust_remote_code"
        raise Forbidden(f"{what} need an admin token")
    if code_tasks and "sandboxed" not in labels:
        labels.append("sandboxed")  # model-written code runs only on sandboxed workers

    run = Run(
        model=request.model,
        backend=request.backend,
        tasks=list(request.tasks),
        options=resolved.model_dump(exclude_none=True),
        labels=labels,
        priority=request.priority,
        baseline=baseline,
        status=RunStatus.QUEUED,
        max_attempts=max_attempts,
        submitted_by=submitted_by,
        ci_context=request.ci_context,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        callback_url=request.callback_url,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except exc.IntegrityError:
        if idempotency_key is None:
            raise
        # Another request with the same Idempotency-Key won the race.
        existing = session.scalar(select(Run).where(Run.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return _same_request(existing, fingerprint), False
    session.add_all(RunTask(run_id=run.id, task=task) for task in dict.fromkeys(request.tasks))
    session.flush()
    return run, True


def _same_request(existing: Run, fingerprint: str) -> Run:
    if existing.request_fingerprint != fingerprint:
        raise InvalidInput("Idempotency-Key was used before with a different request", field="Idempotency-Key")
    return existing


def import_results(
    session: Session,
    *,
    model: str,
    backend: str,
    baseline_name: str | None,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    files: dict[str, bytes],
    submitted_by: str | None,
    ci_context: dict[str, Any] | None = None,
    model_fingerprint: str | None = None,
) -> Run:
    """A run made by hand: create it finished, with its scores and verdict."""
    baseline = _baseline_for(session, baseline_name)
    recording.check_gated_metrics(parsed, baseline, [])
    now = utcnow()
    run = Run(
        model=model,
        backend=backend,
        tasks=parsed.tasks,
        options={},
        labels=[],
        baseline=baseline,
        origin="import",
        status=RunStatus.RUNNING,
        max_attempts=0,
        submitted_by=submitted_by,
        ci_context=ci_context,
        model_fingerprint=model_fingerprint,
        created_at=now,
        started_at=now,
    )
    session.add(run)
    session.flush()
    session.add_all(RunTask(run_id=run.id, task=task) for task in parsed.tasks)
    return recording.record(session, run, parsed, samples, files)


def get(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def cancel(session: Session, run_id: int) -> Run:
    run = get(session, run_id)
    if run.status in RunStatus.TERMINAL:
        raise Conflict(f"run {run_id} is {run.status} already")
    # A running run keeps its lease token: the worker's next write is refused as "cancelled" and it stops.
    run.status = RunStatus.CANCELLED
    run.cancel_requested = True
    run.finished_at = utcnow()
    run.lease_expires_at = None
    notifications.on_run_end(session, run)
    session.flush()
    return run


# --- the worker protocol -------------------------------------------------------------------------------


def heartbeat_worker(
    session: Session, name: str, labels: list[str], backend: str, info: dict[str, Any], draining: bool = False
) -> Worker:
    worker = session.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        worker = Worker(name=name, labels=[], backend=backend, info={})
        session.add(worker)
    worker.labels, worker.backend, worker.info, worker.draining = sorted(set(labels)), backend, info, draining
    worker.last_seen_at = utcnow()
    session.flush()
    return worker


def claim(session: Session, worker: Worker, lease_s: float) -> Lease | None:
    """Lease the most urgent queued run this worker can take, or None. One locked scan, one guarded update."""
    if worker.draining:
        return None
    after_id: tuple[int, int] | None = None
    while True:
        query = (
            select(Run)
            .where(Run.status == RunStatus.QUEUED, Run.backend == worker.backend)
            .order_by(Run.priority.desc(), Run.id)
            .limit(CLAIM_SCAN_BATCH)
            .with_for_update(skip_locked=True)
        )
        if after_id is not None:
            priority, last_id = after_id
            query = query.where((Run.priority < priority) | ((Run.priority == priority) & (Run.id > last_id)))
        batch = list(session.scalars(query))
        if not batch:
            return None
        for run in batch:
            if set(run.labels) <= set(worker.labels):
                return _lease(session, run, worker, lease_s)
        after_id = (batch[-1].priority, batch[-1].id)


def lease_clock(session: Session) -> datetime:
    """Leases are set, renewed and reaped on the database's clock, so API hosts with skewed clocks agree
    (SQLite is embedded: its clock is this host's)."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    return session.scalar(select(func.now())).astimezone(timezone.utc)


def _lease(session: Session, run: Run, worker: Worker, lease_s: float) -> Lease:
    now = lease_clock(session)
    run.status = RunStatus.RUNNING
    run.lease_token = secrets.token_urlsafe(24)
    run.lease_expires_at = now + timedelta(seconds=lease_s)
    run.worker_id = worker.id
    run.attempts += 1
    run.started_at = run.started_at or now
    run.progress_done = run.progress_total = None
    session.flush()
    return Lease(run=run, token=run.lease_token, expires_at=run.lease_expires_at)


def leased(session: Session, run_id: int, token: str) -> Run:
    """The run, if this lease is still the live one; otherwise a 409 that says why."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    if run.lease_token is None or not secrets.compare_digest(run.lease_token.encode(), token.encode()):
        raise Conflict(f"run {run_id}: this lease is stale (the run was handed to another attempt)")
    if run.status == RunStatus.CANCELLED:
        raise Conflict(f"run {run_id} was cancelled")
    if run.status != RunStatus.RUNNING:
        raise Conflict(f"run {run_id} is {run.status}: the lease is over")
    return run


def renew(
    session: Session,
    run_id: int,
    token: str,
    lease_s: float,
    *,
    done: int | None = None,
    total: int | None = None,
    log_tail: str | None = None,
) -> Run:
    run = leased(session, run_id, token)
    run.lease_expires_at = lease_clock(session) + timedelta(seconds=lease_s)
    if done is not None:
        run.progress_done = done
    if total is not None:
        run.progress_total = total
    if log_tail is not None:
        run.log_tail = _tail(log_tail)
    session.flush()
    return run


def complete(
    session: Session,
    run_id: int,
    token: str,
    parsed: ParsedResults,
    samples: list[SampleOutcome],
    files: dict[str, bytes],
    environment: dict[str, Any],
    log_tail: str | None,
    model_fingerprint: str | None = None,
) -> Run:
    """Record the result of this lease, exactly once: a replay of the same upload returns the stored run."""
    fingerprint = hashlib.sha256(b"".join(hashlib.sha256(files[k]).digest() for k in sorted(files))).hexdigest()
    run = session.get(Run, run_id)
    if run is not None and run.status == RunStatus.SUCCEEDED and run.lease_token == token:
        if run.result_fingerprint != fingerprint:
            raise Conflict(f"run {run_id} has a different result recorded already")
        return run
    run = leased(session, run_id, token)
    if log_tail is not None:
        run.log_tail = _tail(log_tail)
    run.result_fingerprint = fingerprint
    run.model_fingerprint = model_fingerprint  # this attempt's: the results come from these weights
    environment = dict(environment)
    run.generation_stats = environment.pop("generation", None) or None
    run.progress_done = run.progress_total = sum(p.get("n_effective") or 0 for p in parsed.profiles.values())
    return recording.record(session, run, parsed, samples, files, environment)


def fail(
    session: Session,
    run_id: int,
    token: str,
    reason: str,
    kind: str,
    log_tail: str | None = None,
    environment: dict[str, Any] | None = None,
    model_fingerprint: str | None = None,
) -> Run:
    """End an attempt. Infrastructure failures go back to the queue while attempts remain."""
    run = session.get(Run, run_id)
    if run is not None and run.status == RunStatus.FAILED and run.lease_token == token:
        return run  # a replayed report
    run = leased(session, run_id, token)
    if log_tail is not None:
        run.log_tail = _tail(log_tail)
    if environment:
        run.environment = environment
    if model_fingerprint is not None:
        run.model_fingerprint = model_fingerprint
    if kind == "infrastructure" and run.attempts < run.max_attempts:
        _requeue(run, reason)
    else:
        _fail(run, reason, kind)
    session.flush()
    return run


def release(session: Session, run_id: int, token: str) -> Run:
    """A draining worker hands its lease back: the run is queued again and the attempt not counted."""
    run = leased(session, run_id, token)
    run.attempts = max(run.attempts - 1, 0)
    _requeue(run, "handed back by a draining worker")
    session.flush()
    return run


def _tail(log: str) -> str:
    return "\n".join(log.splitlines()[-LOG_TAIL_LINES:])


def _requeue(run: Run, reason: str) -> None:
    run.status = RunStatus.QUEUED
    run.lease_token = None
    run.lease_expires_at = None
    run.worker_id = None
    run.failure_reason = f"attempt {run.attempts}: {reason}"


def _fail(run: Run, reason: str, kind: str) -> None:
    run.status = RunStatus.FAILED
    run.failure_reason = reason
    run.failure_kind = kind
    run.finished_at = utcnow()
    run.lease_expires_at = None
    session = object_session(run)
    if session is not None:
        notifications.on_run_end(session, run)


def reap(session: Session, queued_ttl_s: float) -> tuple[int, int]:
    """Requeue runs whose lease expired (or fail them when out of attempts); expire runs queued too long.

    Returns (requeued or failed for a lost lease, expired unclaimed)."""
    now = lease_clock(session)
    lost = list(
        session.scalars(
            select(Run)
            .where(Run.status == RunStatus.RUNNING, Run.lease_expires_at < now)
            .with_for_update(skip_locked=True)
        )
    )
    for run in lost:
        if run.attempts < run.max_attempts:
            _requeue(run, "lease expired (worker lost)")
        else:
            _fail(
                run,
                f"lease expired on attempt {run.attempts} of {run.max_attempts}: worker lost",
                "infrastructure",
            )
    stale = list(
        session.scalars(
            select(Run)
            .where(Run.status == RunStatus.QUEUED, Run.created_at < now - timedelta(seconds=queued_ttl_s))
            .with_for_update(skip_locked=True)
        )
    )
    for run in stale:
        _fail(run, f"expired: not claimed within {queued_ttl_s:g} s", "expired")
    session.flush()
    return len(lost), len(stale)
