"""Baseline shapes for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gate.baselines.models import Baseline
from gate.db import MAX_ID
from gate.runs.schemas import VerdictName


class BaselineScoreOut(BaseModel):
    benchmark: str
    task: str
    metric: str
    num_fewshot: int | None
    score: float
    stderr: float | None
    n_samples: int | None
    tolerance_pp: float
    sided: Literal["two-sided", "lower"]
    protocol: Literal["recorded", "published, protocol unknown"]
    eval_profile: dict[str, Any] | None


class BaselineOut(BaseModel):
    name: str
    model: str
    source: str
    kind: str
    from_run: int | None
    scores: list[BaselineScoreOut]
    checks: dict[str, dict[str, Any]] | None = None  # other check kinds' settings: {"serving": {"reference_run": 12}}

    @classmethod
    def of(cls, b: Baseline) -> BaselineOut:
        return cls(
            name=b.name,
            model=b.model,
            source=b.source,
            kind=b.kind,
            from_run=b.from_run_id,
            checks=b.checks,
            scores=[
                BaselineScoreOut(
                    benchmark=s.benchmark,
                    task=s.task,
                    metric=s.metric,
                    num_fewshot=s.num_fewshot,
                    score=s.score,
                    stderr=s.stderr,
                    n_samples=s.n_samples,
                    tolerance_pp=s.tolerance_pp,
                    sided="two-sided" if s.two_sided else "lower",
                    protocol="recorded" if s.eval_profile is not None else "published, protocol unknown",
                    eval_profile=s.eval_profile,
                )
                for s in b.scores
            ],
        )


class BaselinePromote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_run: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")


class HistoryPointOut(BaseModel):
    run_id: int
    at: datetime | None
    value: float
    stderr: float | None
    verdict: VerdictName | None
    backend: str


class HistoryOut(BaseModel):
    model: str
    task: str
    metric: str
    baseline: float | None
    tolerance_pp: float | None
    two_sided: bool | None  # false: only drops fail, the band reaches up from baseline - tolerance
    points: list[HistoryPointOut]
