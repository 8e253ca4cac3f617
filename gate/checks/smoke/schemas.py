"""Smoke shapes for the API: the submission, and the stored report as pages and programs read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gate.checks.smoke.models import SmokeReport
from gate.runs.schemas import CheckCreate, VerdictName

SPEC_FIELDS = ("model", "backend", "device", "dtype", "engine_args", "prompts", "sampling")


class SmokeCreate(CheckCreate):
    """Sample outputs of a model (checked by gate.checks.smoke.spec): by default the model card's four prompts."""

    model: str = Field(max_length=500, examples=["/models/port"])
    backend: str | None = Field(default=None, examples=["vllm-ascend"])
    device: str | None = Field(default=None, examples=["npu"])
    dtype: str | None = Field(default=None, examples=["bfloat16"])
    engine_args: dict[str, Any] | None = Field(default=None, examples=[{"max_model_len": 4096}])
    prompts: list[str] | None = Field(default=None, examples=[["What is the capital of France?"]])
    sampling: dict[str, Any] | None = Field(default=None, examples=[{"temperature": 0.7, "max_tokens": 256}])

    def spec(self) -> dict[str, Any]:
        """The smoke spec part, as gate.checks.smoke.spec checks it."""
        return {name: getattr(self, name) for name in SPEC_FIELDS if getattr(self, name) is not None}


class SmokeOut(BaseModel):
    run_id: int
    outcome: VerdictName  # pass: every prompt produced output; fail: one or more produced nothing
    reasons: list[str]
    # the worker's report as checked (gate.checks.smoke.report.Report): spec, backend, device_kind, sampling,
    # outputs (prompt, text, reasoning, answer, finish_reason, prompt_tokens, completion_tokens), model_config,
    # versions
    report: dict[str, Any]

    @classmethod
    def of(cls, stored: SmokeReport) -> SmokeOut:
        return cls(
            run_id=stored.run_id,
            outcome=stored.outcome,  # type: ignore[arg-type]  # the column holds these words; pydantic checks
            reasons=stored.reasons,
            report=stored.report,
        )
