"""Serving shapes for the API: the submission, and the stored report as pages and programs read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gate.checks.serving.models import ServingReport
from gate.runs.schemas import CheckCreate, VerdictName

SPEC_FIELDS = (
    "model", "backend", "device", "engine_args", "profile", "rounds", "num_prompts", "concurrencies", "reference_run",
)  # fmt: skip


class ServingCreate(CheckCreate):
    """A serving benchmark of a model (checked by gate.checks.serving.spec), judged against a reference run."""

    model: str = Field(max_length=500, examples=["/models/port"])
    backend: str | None = Field(default=None, examples=["vllm-ascend"])
    device: str | None = Field(default=None, examples=["npu"])
    engine_args: dict[str, Any] | None = Field(default=None, examples=[{"max_model_len": 4096}])
    profile: str | None = Field(default=None, examples=["card"])
    rounds: int | None = None
    num_prompts: int | None = None
    concurrencies: list[int] | None = None
    reference_run: int | None = None

    def spec(self) -> dict[str, Any]:
        """The serving spec part, as gate.checks.serving.spec checks it."""
        return {name: getattr(self, name) for name in SPEC_FIELDS if getattr(self, name) is not None}


class ServingOut(BaseModel):
    run_id: int
    outcome: VerdictName | None  # None: measured, not gated (no reference run)
    reasons: list[str]
    reference_run_id: int | None
    thresholds: dict[str, float]  # throughput_ratio, tpot_ratio
    report: dict[str, Any]  # the worker's report as checked: spec, versions, server figures, levels and rounds

    @classmethod
    def of(cls, stored: ServingReport) -> ServingOut:
        return cls(
            run_id=stored.run_id,
            outcome=stored.outcome,  # type: ignore[arg-type]  # the column holds these words; pydantic checks
            reasons=stored.reasons,
            reference_run_id=stored.reference_run_id,
            thresholds=stored.thresholds,
            report=stored.report,
        )
