"""A baseline as a verdict reads it: plain data, from the ORM (a run's baseline) or from one read of rows (an
import, where loading ORM objects cost more than the read itself)."""

from __future__ import annotations

from dataclasses import dataclass

from gate.baselines.files import Reference


@dataclass(frozen=True)
class GatedEntry:
    id: int  # the baseline_scores row a verdict names
    reference: Reference

    @property
    def task(self) -> str:
        return self.reference.task

    @property
    def metric(self) -> str:
        return self.reference.metric


@dataclass(frozen=True)
class GatedBaseline:
    id: int
    name: str
    from_run_id: int | None  # a reference run's answers pair with a candidate's
    entries: tuple[GatedEntry, ...]
