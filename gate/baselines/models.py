"""Baselines: a published or promoted set of reference scores, one row per task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gate.db import Base, UTCDateTime, utcnow


class Baseline(Base):
    __tablename__ = "baselines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))  # published | reference_run
    from_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", use_alter=True))
    # check kind -> its settings (e.g. {"alignment": {"cosine": 0.9999}}), validated by that kind when used
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
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
