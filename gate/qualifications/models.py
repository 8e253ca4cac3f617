"""A qualification and the runs of its checks. Its status and verdict are derived from those runs when read
(gate.qualifications.verdict), so nothing here changes state after it is created."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gate.baselines.models import Baseline
from gate.db import Base, UTCDateTime, utcnow
from gate.runs.models import Run


class Qualification(Base):
    __tablename__ = "qualifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(500))
    backend: Mapped[str] = mapped_column(String(32))
    plan: Mapped[str] = mapped_column(String(64))  # gate.qualifications.plans.PLANS
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the request as accepted, to show and to repeat
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    baseline_id: Mapped[int | None] = mapped_column(ForeignKey("baselines.id"))
    origin: Mapped[str] = mapped_column(String(16), default="queue")  # queue | webhook
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    ci_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    baseline: Mapped[Baseline | None] = relationship()
    checks: Mapped[list[QualificationCheck]] = relationship(
        order_by="QualificationCheck.position", cascade="all, delete-orphan"
    )


class QualificationCheck(Base):
    """One check of a qualification's plan and the run that carries it out."""

    __tablename__ = "qualification_checks"
    __table_args__ = (UniqueConstraint("qualification_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qualification_id: Mapped[int] = mapped_column(ForeignKey("qualifications.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))  # the plan's name for it: accuracy, alignment, serving, smoke
    position: Mapped[int] = mapped_column(Integer)  # the plan's order
    gated: Mapped[bool]  # whether its verdict counts toward the qualification's
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)

    run: Mapped[Run] = relationship()
