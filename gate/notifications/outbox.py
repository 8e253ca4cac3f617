"""The outbox of run notifications: written with the run's end, sent by the server's delivery loop."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from gate import db
from gate.db import utcnow
from gate.errors import Conflict, NotFound
from gate.notifications import commit_status, notifiers
from gate.notifications.models import DisabledEndpoint, Notification, NotificationAttempt, Notifier
from gate.runs.models import Run, Score, TaskVerdict

EXCERPT_CHARS = 500
BATCH = 10  # notifications claimed per sweep


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


def _message(run: Run, kind: str, url: str, body: dict[str, Any], notifier: Notifier | None) -> Notification:
    return Notification(
        run_id=run.id,
        kind=kind,
        notifier_id=notifier.id if notifier else None,
        url=url,
        webhook_id="msg_" + secrets.token_hex(12),
        payload=body,
        next_attempt_at=utcnow(),
    )


def _commit_status(session: Session, run: Run, notifier: Notifier) -> Notification | None:
    ci = run.ci_context or {}
    try:
        url = commit_status.status_url(notifier.kind, notifier.url, ci.get("repository"), ci.get("commit"))
    except commit_status.UnusableContext:
        return None  # the notifier was added after this run was accepted without a usable context
    result = commit_status.outcome(run.status, run.verdict)
    verdicts = session.scalars(select(TaskVerdict).where(TaskVerdict.run_id == run.id).order_by(TaskVerdict.id))
    deltas: list[tuple[str, float | None]] = [(v.task, v.delta_pp) for v in verdicts] or [
        (task, None) for task in run.tasks
    ]
    baseline = run.baseline.name if run.baseline else None
    body = {
        "outcome": result,
        "description": commit_status.describe(result, run.id, deltas, run.failure_reason),
        "context": commit_status.context_name(baseline),
        "report_path": f"/runs/{run.id}",
    }
    return _message(run, notifier.kind, url, body, notifier)


def on_run_queued(session: Session, run: Run) -> None:
    """A pending commit status for a run its CI source started, in the transaction that created the run."""
    session.flush()
    for notifier in notifiers.of_source(session, run.source_id):
        if notifier.kind in commit_status.KINDS and (message := _commit_status(session, run, notifier)):
            session.add(message)
            db.notify(session, db.OUTBOX)


def _disabled(session: Session, url: str) -> bool:
    return session.scalar(select(DisabledEndpoint.id).where(DisabledEndpoint.url == url)) is not None


def on_run_end(session: Session, run: Run) -> None:
    """Queue the run's notifications in the caller's transaction: if the verdict is stored, so are these."""
    session.flush()
    attached = notifiers.of_source(session, run.source_id)
    webhooks: list[tuple[str, Notifier | None]] = [(run.callback_url, None)] if run.callback_url else []
    webhooks += [(n.url, n) for n in attached if n.kind == notifiers.WEBHOOK]
    webhooks = [(url, notifier) for url, notifier in webhooks if not _disabled(session, url)]
    body = payload(session, run) if webhooks else {}
    for url, notifier in webhooks:
        session.add(_message(run, notifiers.WEBHOOK, url, body, notifier))
        db.notify(session, db.OUTBOX)
    for notifier in attached:
        if notifier.kind not in commit_status.KINDS:
            continue
        # The final status must not be overwritten by a late retry of the pending one.
        session.execute(
            update(Notification)
            .where(
                Notification.run_id == run.id,
                Notification.notifier_id == notifier.id,
                Notification.status == "pending",
            )
            .values(status="superseded", next_attempt_at=None)
        )
        if message := _commit_status(session, run, notifier):
            session.add(message)
            db.notify(session, db.OUTBOX)


def due_in_s(session: Session) -> float | None:
    """Seconds until the earliest pending notification is due (<= 0: now), None when none is pending. A read-only
    look, so that an idle sender does not take SQLite's write lock every poll."""
    pending = select(func.min(Notification.next_attempt_at)).where(Notification.status == "pending")
    earliest = session.scalar(pending)
    return None if earliest is None else (earliest - utcnow()).total_seconds()


def claim_due(session: Session, in_flight_s: float) -> list[Notification]:
    """Up to BATCH due notifications, hidden from other senders for in_flight_s (long enough to send them all)."""
    now = utcnow()
    due = list(
        session.scalars(
            select(Notification)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .options(selectinload(Notification.notifier).selectinload(Notifier.source))
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for notification in due:
        notification.next_attempt_at = now + timedelta(seconds=in_flight_s)
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
    notification = session.get_one(Notification, notification_id)
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
    if notification.status != "pending":  # superseded while in flight: logged, never rescheduled
        session.flush()
        return notification
    if status_code is not None and 200 <= status_code < 300:
        notification.status, notification.next_attempt_at = "delivered", None
    elif status_code == 410 and notification.kind == notifiers.WEBHOOK:  # Standard Webhooks: "gone", stop sending
        notification.status, notification.next_attempt_at = "disabled", None
        if not _disabled(session, notification.url):
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
    if notification.status == "superseded":
        raise Conflict("a newer commit status replaced this one: redeliver that one instead")
    session.execute(delete(DisabledEndpoint).where(DisabledEndpoint.url == notification.url))
    notification.status, notification.next_attempt_at = "pending", utcnow()
    session.flush()
    db.notify(session, db.OUTBOX)
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
