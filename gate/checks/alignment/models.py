"""An alignment run's report: the probe's figures as the worker measured them, judged by the server."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gate.db import Base


class AlignmentReport(Base):
    __tablename__ = "alignment_reports"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # pass | fail | not_comparable, as the server judged
    reasons: Mapped[list[str]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)  # the limits the verdict used
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # the executor's report (execute.execute)
