"""The run lifecycle in one place: submit, claim, renew, complete (or finish), fail, release, cancel, expire.

Every transition is one UPDATE guarded on the state it leaves (and, for worker writes, on the current lease
token), and its row count decides: two requests racing for one run cannot both win, since the loser's UPDATE
waits for the winner's row lock (SQLite: the write lock) and then matches nothing. The loser is refused loudly
(only then is the run read, to say why), never applied to a run that moved on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, cast, exc, func, literal, select, update
from sqlalchemy.orm import Session

from gate import db
from gate.baselines import service as baselines
from gate.baselines.models import Baseline
from gate.checks.accuracy import recording
from gate.checks.accuracy.results import ParsedResults, SampleOutcome
from gate.db import utcnow
from gate.errors import Conflict, Forbidden, InvalidInput, NotFound
from gate.notifications import outbox as notifications
from gate.runs import options as run_options
from gate.runs.models import Artifact, Run, RunStatus, RunTask, Worker
from gate.verdicts.outcome import Outcome

CLAIM_SCAN_BATCH = 100
LOG_TAIL_LINES = 200
ACCURACY = "accuracy"  # the kind whose options and tasks this module checks (gate.runs.options, the baselines)


@dataclass
class RunRequest:
    model: str
    tasks: list[str]
    # gate.checks.KINDS; another kind's options arrive already checked by its own endpoint
    kind: str = ACCURACY
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
    labels = sorted(set(request.labels))
    options = request.options
    if request.kind == ACCURACY:
        options = _accuracy_options(session, request, baseline, labels, admin)

    run = Run(
        kind=request.kind,
        model=request.model,
        backend=request.backend,
        tasks=list(request.tasks),
        options=options,
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
    db.notify(session, db.QUEUED)
    return run, True


def _accuracy_options(
    session: Session, request: RunRequest, baseline: Baseline | None, labels: list[str], admin: bool
) -> dict[str, Any]:
    """An lm-eval run's options resolved; its tasks known to the baseline; code-running asks an admin's (labels
    gains "sandboxed" where model-written code runs)."""
    allowed = known_tasks(session, baseline)
    unknown = [task for task in request.tasks if task not in allowed]
    if unknown:
        where = f"baseline {baseline.name!r}" if baseline else "any baseline"
        raise InvalidInput(f"unknown task(s) {', '.join(unknown)}: not in {where}", field="tasks")
    resolved = run_options.resolve(run_options.RunOptions.model_validate(request.options))
    if resolved.num_fewshot is None and baseline is not None:
        resolved.num_fewshot = _baseline_fewshot(baseline, request.tasks)
    code_tasks = sorted(set(request.tasks) & run_options.CODE_EXECUTING_TASKS)
    if (code_tasks or resolved.model_args.trust_remote_code) and not admin:
        what = f"code-executing task(s) {', '.join(code_tasks)}" if code_tasks else "trust_remote_code"
        raise Forbidden(f"{what} need an admin token")
    if code_tasks and "sandboxed" not in labels:
        labels.append("sandboxed")  # model-written code runs only on sandboxed workers
    return resolved.model_dump(exclude_none=True)


def _baseline_fewshot(baseline: Baseline, tasks: list[str]) -> int | None:
    """The n-shot the baseline gates these tasks at. lm-eval gives every task of a run one --num_fewshot, and a
    task's own default can differ from the baseline's (MMLU: 0 upstream, 5 gated), so a run that names none runs at
    the baseline's; tasks gated at different n-shots cannot share a run."""
    shots = {s.task: s.num_fewshot for s in baseline.scores if s.task in tasks and s.num_fewshot is not None}
    if len(set(shots.values())) > 1:
        listed = ", ".join(f"{task} {n}-shot" for task, n in sorted(shots.items()))
        raise InvalidInput(
            f"baseline {baseline.name!r} gates {listed}, and lm-eval runs every task of a run at one num_fewshot: "
            "submit one run per n-shot, or a qualification, which runs each benchmark at its baseline's",
            field="tasks",
        )
    return next(iter(shots.values()), None)


def _same_request(existing: Run, fingerprint: str) -> Run:
    if existing.request_fingerprint != fingerprint:
        raise InvalidInput("Idempotency-Key was used before with a different request", field="Idempotency-Key")
    return existing


Report = TypeVar("Report")


def stored_report(session: Session, table: type[Report], run_id: int, kind: str) -> Report:
    """A run's report row of a kind's table, or NotFound saying why there is none."""
    found = session.get(table, run_id)
    if found is None:
        run = get(session, run_id)
        article = "an" if run.kind[:1] in "aeiou" else "a"
        raise NotFound(f"run {run_id} has no {kind} report ({article} {run.kind} run, {run.status})")
    return found


def get(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def cancel(session: Session, run_id: int) -> Run:
    # A running run keeps its lease token: the worker's next write is refused as "cancelled" and it stops.
    run = _transition(
        session,
        run_id,
        Run.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)),
        status=RunStatus.CANCELLED,
        cancel_requested=True,
        finished_at=utcnow(),
        lease_expires_at=None,
    )
    if run is None:
        raise Conflict(f"run {run_id} is {_reread(session, run_id).status} already")
    notifications.on_run_end(session, run)
    return run


def _transition(session: Session, run_id: int, *guard: ColumnElement[bool], **values: Any) -> Run | None:
    """Set values on the run if it still matches guard, in one UPDATE: the run as updated, or None."""
    statement = update(Run).where(Run.id == run_id, *guard).values(**values).returning(Run)
    run = session.scalars(statement.execution_options(populate_existing=True)).one_or_none()
    if run is not None:
        _wake(session, values)
    return run


def _wake(session: Session, values: dict[str, Any]) -> None:
    """Processes waiting on what this change ends or queues look again once it commits (gate.db.notify)."""
    status = values.get("status")
    if status == RunStatus.QUEUED:
        db.notify(session, db.QUEUED, db.CHANGED)
    elif status in (RunStatus.CANCELLED, RunStatus.FAILED):
        db.notify(session, db.CHANGED)


def _reread(session: Session, run_id: int) -> Run:
    """The run as now committed (a refused transition says why from it), not as this session last saw it."""
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


# --- the worker protocol -------------------------------------------------------------------------------


def heartbeat_worker(
    session: Session,
    name: str,
    labels: list[str],
    backend: str,
    info: dict[str, Any],
    draining: bool = False,
    *,
    token_name: str,
) -> Worker:
    """Register or refresh a worker. A worker name belongs to the token that first used it: another worker token
    cannot rewrite its labels or drain it."""
    worker = session.scalar(select(Worker).where(Worker.name == name).with_for_update())
    if worker is None:
        worker = Worker(name=name, labels=[], backend=backend, info={}, token_name=token_name)
        session.add(worker)
    elif worker.token_name != token_name:
        raise Forbidden(f"worker name {name!r} belongs to another token: choose another --name")
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
            if set(run.labels) <= set(worker.labels) and (lease := _lease(session, run, worker, lease_s)):
                return lease
        after_id = (batch[-1].priority, batch[-1].id)


def lease_clock(session: Session) -> datetime:
    """Leases are set, renewed and reaped on the database's clock, so API hosts with skewed clocks agree
    (SQLite is embedded: its clock is this host's)."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    return session.execute(select(func.now())).scalar_one().astimezone(timezone.utc)


def _lease(session: Session, run: Run, worker: Worker, lease_s: float) -> Lease | None:
    now = lease_clock(session)
    token, expires_at = secrets.token_urlsafe(24), now + timedelta(seconds=lease_s)
    leased = _transition(
        session,
        run.id,
        Run.status == RunStatus.QUEUED,
        status=RunStatus.RUNNING,
        lease_token=lease_digest(token),
        lease_expires_at=expires_at,
        worker_id=worker.id,
        attempts=Run.attempts + 1,
        started_at=run.started_at or now,  # read under the claim's lock, which the guard confirms
        progress_done=None,
        progress_total=None,
    )
    return None if leased is None else Lease(run=leased, token=token, expires_at=expires_at)


def lease_digest(token: str) -> str:
    """Leases are stored as digests: a database dump or a log of its rows hands no worker's lease to anyone.
    Any string hashes to hex, so a hostile token (NUL, non-ASCII) is simply a mismatch."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def holds(run: Run, token: str) -> bool:
    return run.lease_token is not None and secrets.compare_digest(run.lease_token, lease_digest(token))


def check_holder(run: Run, token: str) -> None:
    """Refuse (409) a write under a lease the run does not hold; the holder's replay of its ending passes."""
    if not holds(run, token):
        raise _lease_refused(run, token)


def _live(token: str) -> tuple[ColumnElement[bool], ...]:
    """The guard of a worker write: the run is running under this lease."""
    return Run.status == RunStatus.RUNNING, Run.lease_token == lease_digest(token)


def _lease_refused(run: Run, token: str) -> Conflict:
    """Why a write under this lease was refused."""
    if not holds(run, token):
        return Conflict(f"run {run.id}: this lease is stale (the run was handed to another attempt)")
    if run.status == RunStatus.CANCELLED:
        return Conflict(f"run {run.id} was cancelled")
    return Conflict(f"run {run.id} is {run.status}: the lease is over")


def renew(
    session: Session,
    run_id: int,
    token: str,
    lease_s: float,
    *,
    done: int | None = None,
    total: int | None = None,
    log_tail: str | None = None,
    estimate: dict[str, Any] | None = None,
) -> Run:
    values: dict[str, Any] = {"lease_expires_at": lease_clock(session) + timedelta(seconds=lease_s)}
    if estimate is not None:
        values["estimate"] = estimate
    if done is not None:
        values["progress_done"] = done
    if total is not None:
        values["progress_total"] = total
    if log_tail is not None:
        values["log_tail"] = _tail(log_tail)
    run = _transition(session, run_id, *_live(token), **values)
    if run is None:
        raise _lease_refused(_reread(session, run_id), token)
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
    """Record the result of this lease, exactly once: a replay of the same upload returns the stored run.

    The guarded status change comes first and holds the run until the transaction ends, so the scores,
    samples, verdicts and notification recorded after it belong to the one ending that won."""
    fingerprint = hashlib.sha256(b"".join(hashlib.sha256(files[k]).digest() for k in sorted(files))).hexdigest()
    environment = dict(environment)
    # documents of the leaf tasks: a group's count is the sum of its members', so counting both counts twice
    evaluated = sum(p.get("n_effective") or 0 for p in parsed.profiles.values() if not p.get("subtasks"))
    values: dict[str, Any] = {
        "status": RunStatus.SUCCEEDED,
        "result_fingerprint": fingerprint,
        "model_fingerprint": model_fingerprint,  # this attempt's: the results come from these weights
        "generation_stats": environment.pop("generation", None) or None,
        "progress_done": evaluated,
        "progress_total": evaluated,
    }
    if parsed.trail is not None:  # the whole running estimate: heartbeats may have missed its last shards
        values["estimate"] = parsed.trail
    if log_tail is not None:
        values["log_tail"] = _tail(log_tail)
    run = _transition(session, run_id, *_live(token), **values)
    if run is not None:
        return recording.record(session, run, parsed, samples, files, environment)
    run = _reread(session, run_id)
    if run.status != RunStatus.SUCCEEDED or not holds(run, token):
        raise _lease_refused(run, token)
    if run.result_fingerprint != fingerprint:
        raise Conflict(f"run {run_id} has a different result recorded already")
    return run


def finish(
    session: Session,
    run_id: int,
    token: str,
    verdict: str | None,
    verdict_reason: str | None,
    *,
    result_fingerprint: str,
    environment: dict[str, Any],
    log_tail: str | None,
    model_fingerprint: str | None = None,
) -> tuple[Run, bool]:
    """End this lease's attempt with a verdict judged by the caller, exactly once: (run, True) for the write that
    won, whose caller then stores the result in the same transaction; (run, False) for a replay of the same result.

    For check kinds other than accuracy, whose results are not lm-eval files (complete); verdict None: measured,
    not gated."""
    values: dict[str, Any] = {
        "status": RunStatus.SUCCEEDED,
        "verdict": verdict,
        "verdict_reason": verdict_reason,
        "result_fingerprint": result_fingerprint,
        "model_fingerprint": model_fingerprint,  # this attempt's: the result comes from these weights
        "environment": environment,
        "failure_reason": None,  # an earlier attempt's failure is history, not the run's outcome
        "finished_at": utcnow(),
        "lease_expires_at": None,  # the token stays: a replayed upload of this attempt is recognised
    }
    if log_tail is not None:
        values["log_tail"] = _tail(log_tail)
    run = _transition(session, run_id, *_live(token), **values)
    if run is not None:
        notifications.on_run_end(session, run)
        return run, True
    run = _reread(session, run_id)
    if run.status != RunStatus.SUCCEEDED or not holds(run, token):
        raise _lease_refused(run, token)
    if run.result_fingerprint != result_fingerprint:
        raise Conflict(f"run {run_id} has a different result recorded already")
    return run, False


def finish_with_report(
    session: Session,
    run_id: int,
    lease: str,
    verdict: str | None,
    reasons: list[str],
    document: dict[str, Any],
    artifact: str,
    *,
    environment: dict[str, Any],
    log_tail: str | None,
    model_fingerprint: str | None,
) -> tuple[Run, bool]:
    """finish() for a kind whose result is one JSON report: the report's digest decides a replay, and the winning
    write stores it as the run's artifact. A verdict other than pass keeps its reasons as the run's verdict_reason."""
    content = json.dumps(document, sort_keys=True, allow_nan=False).encode()
    run, won = finish(
        session,
        run_id,
        lease,
        verdict,
        None if verdict in (Outcome.PASS, None) else " ".join(reasons),
        result_fingerprint=hashlib.sha256(content).hexdigest(),
        environment=environment,
        log_tail=log_tail,
        model_fingerprint=model_fingerprint,
    )
    if won:
        session.add(Artifact(run_id=run.id, name=artifact, content_gz=gzip.compress(content, 6), size=len(content)))
    return run, won


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
    report: dict[str, Any] = {}
    if log_tail is not None:
        report["log_tail"] = _tail(log_tail)
    if environment:
        report["environment"] = environment
    if model_fingerprint is not None:
        report["model_fingerprint"] = model_fingerprint
    live = _live(token)
    retry = (*live, Run.attempts < Run.max_attempts)
    if kind == "infrastructure" and (run := _transition(session, run_id, *retry, **report, **_requeued(reason))):
        return run
    if run := _transition(session, run_id, *live, **report, **_failed(reason, kind)):
        notifications.on_run_end(session, run)
        return run
    run = _reread(session, run_id)
    if run.status == RunStatus.FAILED and holds(run, token):
        return run  # a replayed report
    raise _lease_refused(run, token)


def release(session: Session, run_id: int, token: str) -> Run:
    """A draining worker hands its lease back: the run is queued again and the attempt not counted."""
    handed_back = _requeued("handed back by a draining worker")
    run = _transition(session, run_id, *_live(token), attempts=Run.attempts - 1, **handed_back)
    if run is None:
        raise _lease_refused(_reread(session, run_id), token)
    return run


def _tail(log: str) -> str:
    return "\n".join(log.splitlines()[-LOG_TAIL_LINES:])


def _requeued(reason: str) -> dict[str, Any]:
    """The values that put a run back in the queue; the reason names the attempt that ended."""
    return {
        "status": RunStatus.QUEUED,
        "lease_token": None,
        "lease_expires_at": None,
        "worker_id": None,
        "failure_reason": literal("attempt ", String) + cast(Run.attempts, String) + literal(f": {reason}", String),
    }


def _failed(reason: str | ColumnElement[str], kind: str) -> dict[str, Any]:
    """The values that end a run as failed. The lease token stays: a replayed report of it is recognised."""
    return {
        "status": RunStatus.FAILED,
        "failure_reason": reason,
        "failure_kind": kind,
        "finished_at": utcnow(),
        "lease_expires_at": None,
    }


def _sweep(session: Session, guard: tuple[ColumnElement[bool], ...], values: dict[str, Any]) -> list[Run]:
    """Set values on every run that matches guard and no other transaction holds, in one UPDATE."""
    free = select(Run.id).where(*guard).with_for_update(skip_locked=True)
    statement = update(Run).where(Run.id.in_(free), *guard).values(**values).returning(Run)
    swept = list(session.scalars(statement.execution_options(populate_existing=True)))
    if swept:
        _wake(session, values)
    return swept


def reap(session: Session, queued_ttl_s: float) -> tuple[int, int]:
    """Requeue runs whose lease expired (or fail them when out of attempts); expire runs queued too long.

    Returns (requeued or failed for a lost lease, expired unclaimed)."""
    now = lease_clock(session)
    lost = (Run.status == RunStatus.RUNNING, Run.lease_expires_at < now)
    requeued = _sweep(session, (*lost, Run.attempts < Run.max_attempts), _requeued("lease expired (worker lost)"))
    out_of_attempts = (
        literal("lease expired on attempt ", String)
        + cast(Run.attempts, String)
        + literal(" of ", String)
        + cast(Run.max_attempts, String)
        + literal(": worker lost", String)
    )
    failed = _sweep(session, (*lost, Run.attempts >= Run.max_attempts), _failed(out_of_attempts, "infrastructure"))
    unclaimed = (Run.status == RunStatus.QUEUED, Run.created_at < now - timedelta(seconds=queued_ttl_s))
    expired = _sweep(session, unclaimed, _failed(f"expired: not claimed within {queued_ttl_s:g} s", "expired"))
    for run in failed + expired:
        notifications.on_run_end(session, run)
    return len(requeued) + len(failed), len(expired)


def extend_leases(session: Session, seconds: float) -> int:
    """Push back the expiry of every running lease (after the database was away and nobody could renew)."""
    running = list(session.scalars(select(Run).where(Run.status == RunStatus.RUNNING).with_for_update()))
    for run in running:
        if run.lease_expires_at is not None:
            run.lease_expires_at += timedelta(seconds=seconds)
    session.flush()
    return len(running)
