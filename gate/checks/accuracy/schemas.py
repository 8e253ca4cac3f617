"""Accuracy shapes for the API: an lm-eval run's per-document answers."""

from __future__ import annotations

from pydantic import BaseModel

from gate.checks.accuracy.models import SampleRecord


class SampleOut(BaseModel):
    task: str
    filter: str
    doc_id: int
    doc_hash: str
    correct: bool
    filtered_answer: str
    target: str
    question: str | None
    raw_output: str | None

    @classmethod
    def of(cls, s: SampleRecord) -> SampleOut:
        return cls(
            task=s.task,
            filter=s.filter,
            doc_id=s.doc_id,
            doc_hash=s.doc_hash,
            correct=s.correct,
            filtered_answer=s.filtered_answer,
            target=s.target,
            question=s.question,
            raw_output=s.raw_output,
        )
