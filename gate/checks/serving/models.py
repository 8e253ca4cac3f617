"""A serving run's report: the benchmark's figures per concurrency level and round, judged by the server."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gate.db import Base


class ServingReport(Base):
    __tablename__ = "serving_reports"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str | None] = mapped_column(String(16))  # pass | fail | not_comparable; None: not gated
    reasons: Mapped[list[str]] = mapped_column(JSON)
    # the serving run judged against (no foreign key: deleting a reference keeps the verdicts made with it)
    reference_run_id: Mapped[int | None]
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)  # the ratios the verdict used
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # the worker's report, as checked (report.check)
