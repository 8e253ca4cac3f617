"""Per-document answers of an lm-eval run: what paired comparisons and the samples browser read."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gate.db import Base


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
