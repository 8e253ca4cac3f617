"""Qualification shapes for the API: the request, and its state with each check's run."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from gate.qualifications import plans
from gate.qualifications.models import Qualification
from gate.qualifications.verdict import CheckState, overall
from gate.runs import options as opts
from gate.runs.schemas import CheckCreate, RunOut

QualificationVerdict = Literal["pass", "fail", "not_comparable", "run_failed"]
QualificationStatus = Literal["waiting", "running", "finished"]


class AccuracyTuning(opts.RunOptions):
    """The accuracy check's lm-eval options and its tasks (GSM8K unless named). One task is the check "accuracy",
    5-shot unless set; several are one run each, "accuracy:TASK", at the baseline entry's n-shot unless set."""

    tasks: list[str] | None = Field(
        default=None, min_length=1, max_length=32, examples=[["gsm8k", "mmlu", "minerva_math", "humaneval"]]
    )

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [opts.check_task(task) for task in value]


class QualificationCreate(CheckCreate):
    """Every check of a plan for one model, served one way; each check may be tuned under its own name."""

    model: str = Field(max_length=500, examples=["/models/qwen3-4b-thinking-2507-npu"])
    backend: opts.Backend = "vllm"
    plan: str = Field(default=plans.DEFAULT_PLAN, max_length=64)
    checks: list[str] | None = Field(default=None, max_length=16, description="a subset of the plan's checks")
    device: str | None = Field(default=None, max_length=500, examples=["npu:0"])
    dtype: str | None = Field(default=None, max_length=16, examples=["bfloat16"])
    engine_args: dict[str, Any] | None = Field(default=None, examples=[{"enforce_eager": True}])
    reference_run: int | None = Field(default=None, ge=1, description="the serving run the benchmark is judged by")
    accuracy: AccuracyTuning | None = None
    alignment: dict[str, Any] | None = Field(default=None, examples=[{"precisions": ["float32", "bfloat16"]}])
    serving: dict[str, Any] | None = Field(default=None, examples=[{"rounds": 3}])
    smoke: dict[str, Any] | None = Field(default=None, examples=[{"prompts": ["What is the capital of France?"]}])

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return opts.check_model_ref(value)

    def request(self) -> dict[str, Any]:
        """The request as stored and expanded by the plan (idempotency key apart: it names, it does not ask)."""
        return self.model_dump(exclude_none=True, exclude={"idempotency_key", "plan"})


class CheckOut(BaseModel):
    name: str
    gated: bool
    waiting: str | None  # why its run has no taker, while queued
    run: RunOut


class QualificationOut(BaseModel):
    id: int
    model: str
    backend: str
    plan: str
    baseline: str | None
    labels: list[str]
    status: QualificationStatus
    verdict: QualificationVerdict | None
    reasons: list[str]
    checks: list[CheckOut]
    request: dict[str, Any]
    origin: str
    submitted_by: str | None
    created_at: datetime
    url: str
    report_url: str  # the report page; its Markdown: url + "/report.md"

    @classmethod
    def of(cls, q: Qualification, states: list[CheckState]) -> QualificationOut:
        found = overall(states)
        by_name = {state.name: state for state in states}
        return cls(
            id=q.id,
            model=q.model,
            backend=q.backend,
            plan=q.plan,
            baseline=q.baseline.name if q.baseline else None,
            labels=q.labels,
            status=found.status,  # type: ignore[arg-type]  # verdict.overall's words; pydantic checks them
            verdict=found.verdict,  # type: ignore[arg-type]
            reasons=found.reasons,
            checks=[
                CheckOut(name=c.name, gated=c.gated, waiting=by_name[c.name].waiting, run=RunOut.of(c.run))
                for c in q.checks
            ],
            request=q.request,
            origin=q.origin,
            submitted_by=q.submitted_by,
            created_at=q.created_at,
            url=f"/api/v1/qualifications/{q.id}",
            report_url=f"/qualifications/{q.id}",
        )
