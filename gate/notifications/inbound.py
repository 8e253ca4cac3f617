"""Inbound CI webhooks: sources and the delivery ids that make redeliveries harmless."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exc, select
from sqlalchemy.orm import Session

from gate.db import utcnow
from gate.errors import Conflict, InvalidInput, Unauthorized
from gate.notifications import notifiers
from gate.notifications import outbox as notifications
from gate.notifications.models import CISource, InboundDelivery
from gate.qualifications import service as qualifications
from gate.qualifications.models import Qualification
from gate.runs import service as runs
from gate.runs.models import Run

KINDS = ("github", "gitlab", "standard")


def create_source(session: Session, name: str, kind: str) -> CISource:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if session.scalar(select(CISource.id).where(CISource.name == name)) is not None:
        raise Conflict(f"a CI source named {name!r} exists already")
    source = CISource(name=name, kind=kind, nonce=secrets.token_hex(16))
    session.add(source)
    session.flush()
    return source


def source(session: Session, name: str) -> CISource:
    found = session.scalar(select(CISource).where(CISource.name == name))
    if found is None:
        raise Unauthorized("unknown CI source")  # no hint whether the name exists
    return found


def receive(
    session: Session,
    source_row: CISource,
    delivery_id: str,
    request: runs.RunRequest,
    max_attempts: int,
) -> tuple[Run, bool]:
    """Create the run of a verified delivery; a delivery id seen before returns its run and creates nothing."""
    seen = _seen(session, source_row, delivery_id)
    if seen is not None and seen.run_id is not None:
        return session.get_one(Run, seen.run_id), False
    if seen is not None:
        raise Conflict(f"delivery {delivery_id} started qualification {seen.qualification_id}, not a run")
    notifiers.check_context(session, source_row.id, request.ci_context)
    run, _ = runs.submit(
        session, request, submitted_by=f"webhook:{source_row.name}", admin=False, max_attempts=max_attempts
    )
    run.origin = "webhook"
    run.source_id = source_row.id
    notifications.on_run_queued(session, run)
    _remember(session, InboundDelivery(source_id=source_row.id, delivery_id=delivery_id, run_id=run.id))
    return run, True


def _seen(session: Session, source_row: CISource, delivery_id: str) -> InboundDelivery | None:
    return session.scalar(
        select(InboundDelivery).where(
            InboundDelivery.source_id == source_row.id, InboundDelivery.delivery_id == delivery_id
        )
    )


def _remember(session: Session, delivery: InboundDelivery) -> None:
    try:
        with session.begin_nested():
            session.add(delivery)
    except exc.IntegrityError:
        raise Conflict("this delivery is being processed by another request") from None


def receive_qualification(
    session: Session, source_row: CISource, delivery_id: str, plan: str, request: dict[str, Any], max_attempts: int
) -> tuple[Qualification, bool]:
    """Create the qualification of a verified delivery; a delivery id seen before returns it and creates nothing."""
    seen = _seen(session, source_row, delivery_id)
    if seen is not None and seen.qualification_id is not None:
        return session.get_one(Qualification, seen.qualification_id), False
    if seen is not None:
        raise Conflict(f"delivery {delivery_id} started run {seen.run_id}, not a qualification")
    notifiers.check_context(session, source_row.id, request.get("ci"))
    q, _ = qualifications.create(
        session, plan, request, submitted_by=f"webhook:{source_row.name}", admin=False,
        max_attempts=max_attempts, origin="webhook",
    )  # fmt: skip
    _remember(session, InboundDelivery(source_id=source_row.id, delivery_id=delivery_id, qualification_id=q.id))
    return q, True


def prune_deliveries(session: Session, keep_days: float) -> int:
    """Forget delivery ids older than `keep_days`; a redelivery older than that would start a second run."""
    cutoff = utcnow() - timedelta(days=keep_days)
    result = cast(
        CursorResult[Any], session.execute(delete(InboundDelivery).where(InboundDelivery.received_at < cutoff))
    )
    return result.rowcount
