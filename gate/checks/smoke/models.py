"""A smoke run's report: each prompt's output as the worker generated it, judged by the server."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gate.db import Base


class SmokeReport(Base):
    __tablename__ = "smoke_reports"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # pass | fail, as the server judged
    reasons: Mapped[list[str]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # the worker's report, as checked (report.check)
