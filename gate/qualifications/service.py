"""Creating a qualification (its plan's runs, in one transaction) and reading its state."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import exc as sql_errors
from sqlalchemy import select
from sqlalchemy.orm import Session

from gate import checks
from gate.baselines import service as baselines
from gate.db import utcnow
from gate.errors import Conflict, Forbidden, InvalidInput, NotFound
from gate.qualifications import plans, verdict
from gate.qualifications.models import Qualification, QualificationCheck
from gate.runs import service as runs
from gate.runs.models import Run, RunStatus, Worker


def fingerprint(plan: str, request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([plan, request], sort_keys=True, default=str).encode()).hexdigest()


def _asks_remote_code(value: Any) -> bool:
    """Whether a spec turns on trust_remote_code anywhere (a side's or the server's engine arguments)."""
    if isinstance(value, dict):
        return bool(value.get("trust_remote_code")) or any(_asks_remote_code(v) for v in value.values())
    return isinstance(value, list) and any(_asks_remote_code(v) for v in value)


def _checked(session: Session, planned: plans.Planned, baseline: str | None, admin: bool) -> dict[str, Any]:
    """A check's options as its kind's own submission checks them (accuracy's are checked by runs.submit)."""
    if planned.kind == "accuracy":
        return planned.options
    try:
        checked: dict[str, Any] = checks.part(planned.kind, "spec").check(planned.options)
    except ValueError as exc:
        raise InvalidInput(f"{planned.name}: {exc}", field=planned.name) from None
    if not admin and _asks_remote_code(checked):
        raise Forbidden("trust_remote_code needs an admin token")
    recording = checks.part(planned.kind, "recording")
    if hasattr(recording, "reference_run"):  # a kind judged against a reference run: it must be one, now
        limits = recording.thresholds(baselines.get(session, baseline) if baseline is not None else None)
        ref_id = recording.reference_run(checked, limits)
        if ref_id is not None:
            recording.reference(session, ref_id)
    return checked


def create(
    session: Session,
    plan: str,
    request: dict[str, Any],
    *,
    submitted_by: str | None,
    admin: bool,
    max_attempts: int,
    idempotency_key: str | None = None,
    origin: str = "queue",
) -> tuple[Qualification, bool]:
    """Queue every check of the plan for one model. Returns (qualification, created): a repeated idempotency key
    returns the first one (a different request under it is refused)."""
    digest = fingerprint(plan, request)
    if idempotency_key is not None:
        existing = session.scalar(select(Qualification).where(Qualification.idempotency_key == idempotency_key))
        if existing is not None:
            return _same_request(existing, digest), False
    baseline = request.get("baseline")
    found = baselines.get(session, baseline) if baseline is not None else None
    fewshot = {s.task: s.num_fewshot for s in found.scores} if found is not None else {}
    try:
        planned = plans.expand(plan, request, fewshot)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="checks") from None
    options = [_checked(session, p, baseline, admin) for p in planned]
    qualification = Qualification(
        model=request["model"],
        backend=request["backend"],
        plan=plan,
        request=request,
        labels=sorted(set(request.get("labels") or [])),
        baseline=found,
        origin=origin,
        submitted_by=submitted_by,
        ci_context=request.get("ci"),
        idempotency_key=idempotency_key,
        request_fingerprint=digest,
    )
    try:
        with session.begin_nested():
            session.add(qualification)
            session.flush()
    except sql_errors.IntegrityError:
        if idempotency_key is None:
            raise
        existing = session.scalar(select(Qualification).where(Qualification.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return _same_request(existing, digest), False
    for position, (p, checked) in enumerate(zip(planned, options, strict=True)):
        run_request = runs.RunRequest(
            kind=p.kind,
            model=request["model"],
            tasks=p.tasks,
            backend=p.backend,
            baseline=baseline,
            labels=qualification.labels,
            priority=request.get("priority", 0),
            options=checked,
            ci_context=request.get("ci"),
        )
        try:
            run, _ = runs.submit(
                session, run_request, submitted_by=submitted_by, admin=admin, max_attempts=max_attempts
            )
        except ValueError as exc:  # an unknown option profile
            raise InvalidInput(f"{p.name}: {exc}", field=p.name) from None
        run.origin = origin
        qualification.checks.append(QualificationCheck(name=p.name, position=position, gated=p.gated, run_id=run.id))
    session.flush()
    return qualification, True


def _same_request(existing: Qualification, digest: str) -> Qualification:
    if existing.request_fingerprint != digest:
        raise InvalidInput("Idempotency-Key was used before with a different request", field="Idempotency-Key")
    return existing


def cancel(session: Session, q: Qualification) -> list[int]:
    """Cancel every run of the qualification still queued or running (each a guarded transition); the ids."""
    cancelled = []
    for c in q.checks:
        try:
            runs.cancel(session, c.run_id)
        except Conflict:  # ended meanwhile: its end stands
            continue
        cancelled.append(c.run_id)
    return cancelled


def get(session: Session, qualification_id: int) -> Qualification:
    found = session.get(Qualification, qualification_id)
    if found is None:
        raise NotFound(f"qualification {qualification_id} does not exist")
    return found


def listing(session: Session, model: str | None, limit: int) -> list[Qualification]:
    query = select(Qualification).order_by(Qualification.id.desc()).limit(limit)
    if model is not None:
        query = query.where(Qualification.model == model)
    return list(session.scalars(query))


def _present(session: Session, offline_after_s: float) -> list[Worker]:
    """Workers heard from lately: asking for work, or renewing a lease (a busy worker's row is not touched)."""
    now = utcnow()
    busy = set(
        session.scalars(
            select(Run.worker_id).where(
                Run.status == RunStatus.RUNNING, Run.lease_expires_at > now - timedelta(seconds=offline_after_s)
            )
        )
    )
    recent = now - timedelta(seconds=offline_after_s)
    return [w for w in session.scalars(select(Worker)) if (w.last_seen_at > recent or w.id in busy) and not w.draining]


def waiting_for(run: Run, present: list[Worker]) -> str | None:
    """Why a queued run has no taker, or None when a present worker could claim it."""
    if any(w.backend == run.backend and set(run.labels) <= set(w.labels) for w in present):
        return None
    return verdict.no_worker(run.backend, run.labels)


def states(session: Session, q: Qualification, offline_after_s: float) -> list[verdict.CheckState]:
    queued = any(c.run.status == RunStatus.QUEUED for c in q.checks)
    present = _present(session, offline_after_s) if queued else []
    return [
        verdict.CheckState(
            name=c.name,
            gated=c.gated,
            run_id=c.run_id,
            status=c.run.status,
            verdict=c.run.verdict,
            waiting=waiting_for(c.run, present) if c.run.status == RunStatus.QUEUED else None,
        )
        for c in q.checks
    ]
