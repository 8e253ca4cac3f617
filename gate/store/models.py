"""ORM tables. Migrations under migrations/ create them; tests check the two agree."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gate.store.db import Base

MAX_ID = 2**31 - 1  # ids are Integer, 32-bit on Postgres: a larger value cannot name a row


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no time zones), always returned aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: gate stores UTC only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class RunStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


class Baseline(Base):
    __tablename__ = "baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # published | reference_run
    from_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", use_alter=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    scores: Mapped[list[BaselineScore]] = relationship(
        back_populates="baseline", order_by="BaselineScore.id", cascade="all, delete-orphan"
    )


class BaselineScore(Base):
    __tablename__ = "baseline_scores"
    __table_args__ = (UniqueConstraint("baseline_id", "task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    baseline_id: Mapped[int] = mapped_column(ForeignKey("baselines.id", ondelete="CASCADE"))
    benchmark: Mapped[str] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    num_fewshot: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    stderr: Mapped[float | None] = mapped_column(Float)
    n_samples: Mapped[int | None] = mapped_column(Integer)
    tolerance_pp: Mapped[float] = mapped_column(Float, default=2.0)
    two_sided: Mapped[bool] = mapped_column(Boolean, default=True)
    # None: a published figure, protocol unknown.
    eval_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    baseline: Mapped[Baseline] = relationship(back_populates="scores")


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    backend: Mapped[str] = mapped_column(String(32))
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    token_name: Mapped[str | None] = mapped_column(String(200))  # the worker token that registered this name
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_model_id", "model", "id"),
        Index("ix_runs_status_priority_id", "status", "priority", "id"),
        Index("ix_runs_verdict_id", "verdict", "id"),
        Index("ix_runs_baseline_id_id", "baseline_id", "id"),
        Index("ix_runs_model_fingerprint", "model_fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(500))
    backend: Mapped[str] = mapped_column(String(32))
    tasks: Mapped[list[str]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)  # a worker must carry all of them
    priority: Mapped[int] = mapped_column(Integer, default=0)
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("baselines.id"))
    origin: Mapped[str] = mapped_column(String(16), default="queue")  # queue | import | webhook
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED)
    verdict: Mapped[str | None] = mapped_column(String(16))
    verdict_reason: Mapped[str | None] = mapped_column(Text)  # why the verdict is not pass or fail, when no task says
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_token: Mapped[str | None] = mapped_column(String(64))  # sha256 of the lease (runs.lease_digest)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    ci_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failure_kind: Mapped[str | None] = mapped_column(String(16))  # infrastructure | user | timeout | expired
    progress_done: Mapped[int | None] = mapped_column(Integer)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    log_tail: Mapped[str | None] = mapped_column(Text)
    environment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    eval_profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # task -> profile
    # task -> share of answers that hit the generation cap (a config problem when high, not a regression)
    generation_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result_fingerprint: Mapped[str | None] = mapped_column(String(64))  # sha256 of the accepted upload
    # content digest of the files that decide the model's answers (weights, config, tokenizer, templates)
    model_fingerprint: Mapped[str | None] = mapped_column(String(64))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("ci_sources.id", ondelete="SET NULL"))  # webhook runs

    baseline: Mapped[Baseline | None] = relationship(foreign_keys=[baseline_id])
    worker: Mapped[Worker | None] = relationship()
    scores: Mapped[list[Score]] = relationship(order_by="Score.id", cascade="all, delete-orphan")
    verdicts: Mapped[list[TaskVerdict]] = relationship(order_by="TaskVerdict.id", cascade="all, delete-orphan")


class RunTask(Base):
    """One row per requested task, so that "runs of task X" is an indexed lookup."""

    __tablename__ = "run_tasks"
    __table_args__ = (Index("ix_run_tasks_task_run_id", "task", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    task: Mapped[str] = mapped_column(String(200), primary_key=True)


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (UniqueConstraint("run_id", "task", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    stderr: Mapped[float | None] = mapped_column(Float)
    n_samples: Mapped[int | None] = mapped_column(Integer)


class TaskVerdict(Base):
    __tablename__ = "verdicts"
    __table_args__ = (UniqueConstraint("run_id", "task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    baseline_score_id: Mapped[int] = mapped_column(ForeignKey("baseline_scores.id"))
    task: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    delta_pp: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # the whole Verdict, as data


class SampleRecord(Base):
    __tablename__ = "samples"
    __table_args__ = (UniqueConstraint("run_id", "task", "filter", "doc_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(200))
    filter: Mapped[str] = mapped_column(String(100))
    doc_id: Mapped[int] = mapped_column(Integer)
    doc_hash: Mapped[str] = mapped_column(String(64))
    correct: Mapped[bool] = mapped_column(Boolean)
    filtered_answer: Mapped[str] = mapped_column(Text)
    target: Mapped[str] = mapped_column(Text)
    question: Mapped[str | None] = mapped_column(Text)
    raw_output: Mapped[str | None] = mapped_column(Text)  # the model's answer as generated, reasoning included


class Artifact(Base):
    """The raw lm-eval files of a run, gzip-compressed, for download."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    content_gz: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256: tokens are 256-bit random
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    sealed_token: Mapped[str | None] = mapped_column(Text)  # sealed with the server key (gate.core.sealing)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    source: Mapped[CISource] = relationship()


class InboundDelivery(Base):
    """Delivery ids seen from CI sources (kept at least 7 days: GitHub signatures carry no timestamp)."""

    __tablename__ = "inbound_deliveries"
    __table_args__ = (UniqueConstraint("source_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("ci_sources.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
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
