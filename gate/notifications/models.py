"""CI sources, their notifiers, inbound deliveries seen, and the outbox of notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gate.db import Base, UTCDateTime, utcnow


class CISource(Base):
    """A CI system allowed to start runs by webhook. Its secret is derived from the server key and a nonce."""

    __tablename__ = "ci_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # github | gitlab | standard
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notifier(Base):
    """How a CI source hears that its runs ended: a commit status on GitHub or GitLab, or a signed webhook."""

    __tablename__ = "notifiers"
    __table_args__ = (UniqueConstraint("source_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("ci_sources.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # github-status | gitlab-status | webhook
    url: Mapped[str] = mapped_column(String(2000))  # the API base URL, or the webhook's URL
    sealed_token: Mapped[str | None] = mapped_column(Text)  # sealed with the server key (gate.notifications.sealing)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    source: Mapped[CISource] = relationship()


class InboundDelivery(Base):
    """Delivery ids seen from CI sources (kept at least 7 days: GitHub signatures carry no timestamp)."""

    __tablename__ = "inbound_deliveries"
    __table_args__ = (UniqueConstraint("source_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("ci_sources.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(200))
    # what the delivery started: a run, or a qualification (gate.qualifications) and its runs
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    qualification_id: Mapped[int | None] = mapped_column(ForeignKey("qualifications.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """The outbox: a signed message about a finished run, written in the transaction that ended the run."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")  # as Notifier.kind
    notifier_id: Mapped[int | None] = mapped_column(ForeignKey("notifiers.id", ondelete="CASCADE"))  # None: callback
    url: Mapped[str] = mapped_column(String(2000))
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)  # the same across attempts
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending | delivered | failed | disabled | superseded (a commit status overtaken by a newer one)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    notifier: Mapped[Notifier | None] = relationship()
    attempt_log: Mapped[list[NotificationAttempt]] = relationship(
        order_by="NotificationAttempt.id", cascade="all, delete-orphan"
    )


class NotificationAttempt(Base):
    __tablename__ = "notification_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class DisabledEndpoint(Base):
    """A callback URL that answered 410 Gone: nothing more is sent to it."""

    __tablename__ = "disabled_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    disabled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
