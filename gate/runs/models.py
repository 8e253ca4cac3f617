"""The spine's tables: runs, their tasks, scores, verdicts and files, and the workers that claim them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gate.baselines.models import Baseline
from gate.db import Base, UTCDateTime, utcnow


class RunStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
    TERMINAL = (SUCCEEDED, FAILED, CANCELLED)


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
    kind: Mapped[str] = mapped_column(String(32), default="accuracy", server_default="accuracy")  # gate.checks.KINDS
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
    # a sharded run's running estimate, {"total": N, "points": [[answered, right, low, high], ...]}
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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

    @property
    def baseline_name(self) -> str | None:  # as queries.RUN_ROWS names it, so one schema reads either
        return self.baseline.name if self.baseline else None


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


class Artifact(Base):
    """The raw lm-eval files of a run, gzip-compressed, for download."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(300))
    content_gz: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
