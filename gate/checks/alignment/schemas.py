"""Alignment shapes for the API: the submission, and the stored report as pages and programs read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gate.checks.alignment.models import AlignmentReport
from gate.runs.schemas import CheckCreate, VerdictName


class AlignmentCreate(CheckCreate):
    """A probe of a candidate against a reference (by default hf on CPU in float32, the card's reference)."""

    candidate: dict[str, Any] = Field(examples=[{"model": "/models/port", "backend": "vllm-ascend"}])
    reference: dict[str, Any] | None = None
    precisions: list[str] | None = Field(default=None, examples=[["float32", "bfloat16"]])
    probes: dict[str, Any] | None = Field(default=None, examples=[{"set": "card"}])
    top_k: int | None = None

    def spec(self) -> dict[str, Any]:
        """The probe spec part, as gate.checks.alignment.spec checks it."""
        fields = ("candidate", "reference", "precisions", "probes", "top_k")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


def _without_positions(comparison: dict[str, Any]) -> dict[str, Any]:
    texts = [{k: v for k, v in text.items() if k != "positions"} for text in comparison["texts"]]
    keys = ("candidate", "reference", "cosine_basis", "overall")
    return {**{key: comparison[key] for key in keys}, "texts": texts}


class AlignmentOut(BaseModel):
    run_id: int
    outcome: VerdictName
    reasons: list[str]
    thresholds: dict[str, float]
    tokens: dict[str, str]  # str(token id) -> its text by the reference tokenizer
    probe: list[dict[str, Any]]  # name, kind, text, token_ids
    sides: list[dict[str, Any]]  # role, backend, model, dtype, device, top_k, full_logits, positions, seconds
    three_way: dict[str, dict[str, Any]] | None  # the card's table, when both precisions were probed
    noise_floor: dict[str, Any] | None  # the reference's own low-vs-high precision figures (overall only)
    comparisons: dict[str, dict[str, Any]]  # per text and overall, positions left out (see /positions)

    @classmethod
    def of(cls, stored: AlignmentReport) -> AlignmentOut:
        report = stored.report
        floor = report.get("noise_floor")
        return cls(
            run_id=stored.run_id,
            outcome=stored.outcome,  # type: ignore[arg-type]  # the column holds these words; pydantic checks
            reasons=stored.reasons,
            thresholds=stored.thresholds,
            tokens=report.get("tokens", {}),
            probe=report["probe"],
            sides=[{k: v for k, v in side.items() if k != "record"} for side in report["sides"]],
            three_way=report.get("three_way"),
            noise_floor=None if floor is None else {key: floor[key] for key in ("candidate", "reference", "overall")},
            comparisons={name: _without_positions(c) for name, c in report["comparisons"].items()},
        )


class PositionsOut(BaseModel):
    comparison: str
    text: str
    tokens: list[str]  # the text's tokens as fed to every side, decoded one by one
    positions: list[dict[str, Any]]  # positions[j] predicts tokens[j + 1]
