"""Reading an accuracy run's per-document answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.checks.accuracy.models import SampleRecord


def samples(
    session: Session, run_id: int, *, task: str | None, only_wrong: bool, limit: int, offset: int
) -> list[SampleRecord]:
    query = select(SampleRecord).where(SampleRecord.run_id == run_id)
    if task is not None:
        query = query.where(SampleRecord.task == task)
    if only_wrong:
        query = query.where(SampleRecord.correct.is_(False))
    query = query.order_by(SampleRecord.task, SampleRecord.filter, SampleRecord.doc_id).offset(offset).limit(limit)
    return list(session.scalars(query))
