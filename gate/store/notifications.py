"""The outbox of run notifications: written with the run's end, sent by the server's delivery loop."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gate.errors import NotFound
from gate.store.models import DisabledEndpoint, Notification, NotificationAttempt, Run, Score, TaskVerdict, utcnow

EXCERPT_CHARS = 500
IN_FLIGHT_S = 60  # a claimed delivery is invisible to other senders this long


def payload(session: Session, run: Run) -> dict[str, Any]:
    scores = session.scalars(select(Score).where(Score.run_id == run.id).order_by(Score.id))
    verdicts = session.scalars(select(TaskVerdict).where(TaskVerdict.run_id == run.id).order_by(TaskVerdict.id))
    return {
        "type": "run.finished",
        "run": {
            "id": run.id,
            "model": run.model,
            "backend": run.backend,
            "status": run.status,
            "verdict": run.verdict,
            "baseline": run.baseline.name if run.baseline else None,
            "failure_reason": run.failure_reason,
            "ci": run.ci_context,
            "scores": [{"task": s.task, "metric": s.metric, "value": s.value, "stderr": s.stderr} for s in scores],
            "verdicts": [
                {
                    "task": v.task,
                    "outcome": v.outcome,
                    "delta_pp": v.delta_pp,
                    "candidate": v.details["candidate"],
                    "baseline": v.details["baseline"],
                    "tolerance_pp": v.details["tolerance_pp"],
                }
                for v in verdicts
            ],
        },
        "report_path": f"/runs/{run.id}",
    }


def on_run_end(session: Session, run: Run) -> None:
    """Queue the run's notification in the caller's transaction: if the verdict is stored, so is this."""
    if not run.callback_url:
        return
    if session.scalar(select(DisabledEndpoint.id).where(DisabledEndpoint.url == run.callback_url)) is not None:
        return
    session.flush()
    session.add(
        Notification(
            run_id=run.id,
            url=run.callback_url,
            webhook_id="msg_" + secrets.token_hex(12),
            payload=payload(session, run),
            next_attempt_at=utcnow(),
        )
    )


def claim_due(session: Session, limit: int = 20) -> list[Notification]:
    now = utcnow()
    due = list(
        session.scalars(
            select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for notification in due:
        notification.next_attempt_at = now + timedelta(seconds=IN_FLIGHT_S)
    session.flush()
    return due


def record_attempt(
    session: Session,
    notification_id: int,
    *,
    status_code: int | None,
    latency_ms: float | None,
    excerpt: str | None,
    error: str | None,
    next_delay_s: float | None,
) -> Notification:
    """Log one attempt; schedule the next, or end the message (delivered, failed, or disabled on 410)."""
    notification = session.get(Notification, notification_id)
    notification.attempts += 1
    session.add(
        NotificationAttempt(
            notification_id=notification_id,
            status_code=status_code,
            latency_ms=latency_ms,
            response_excerpt=(excerpt or "")[:EXCERPT_CHARS] or None,
            error=error,
        )
    )
    if status_code is not None and 200 <= status_code < 300:
        notification.status, notification.next_attempt_at = "delivered", None
    elif status_code == 410:
        notification.status, notification.next_attempt_at = "disabled", None
        if session.scalar(select(DisabledEndpoint.id).where(DisabledEndpoint.url == notification.url)) is None:
            session.add(DisabledEndpoint(url=notification.url))
    elif next_delay_s is None:
        notification.status, notification.next_attempt_at = "failed", None
    else:
        notification.next_attempt_at = utcnow() + timedelta(seconds=next_delay_s)
    session.flush()
    return notification


def redeliver(session: Session, notification_id: int) -> Notification:
    """Send again now, with the same webhook-id (receivers deduplicate on it)."""
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"delivery {notification_id} does not exist")
    session.execute(DisabledEndpoint.__table__.delete().where(DisabledEndpoint.url == notification.url))
    notification.status, notification.next_attempt_at = "pending", utcnow()
    session.flush()
    return notification


def for_run(session: Session, run_id: int) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.run_id == run_id)
            .options(selectinload(Notification.attempt_log))
            .order_by(Notification.id)
        )
    )
