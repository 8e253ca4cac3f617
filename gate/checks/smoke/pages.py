"""What the run page shows for a smoke run: each prompt and its output verbatim, the reasoning folded, the sampling
with where each value came from, and the model's configuration.

`run_context` turns a stored report into plain rows; the template (templates/checks/smoke/run.html) only formats
them. `section` is the dashboard's entry (gate.checks.part).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gate.checks.smoke import judge, models
from gate.checks.smoke.report import ModelConfig
from gate.runs.models import Run

SPEC, GENERATION_CONFIG, NEUTRAL = "spec", "generation_config.json", "default"  # where a sampling value came from


@dataclass(frozen=True)
class OutputRow:
    number: int  # 1-based, as the verdict's sentences count prompts
    prompt: str
    text: str  # verbatim
    reasoning: str | None
    answer: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    empty: bool  # produced nothing: what fails the run


@dataclass(frozen=True)
class SamplingRow:
    name: str
    value: Any  # None: unset (seed)
    source: str  # spec, generation_config.json or default


def outputs(report: dict[str, Any]) -> list[OutputRow]:
    return [
        OutputRow(
            number=i,
            prompt=o["prompt"],
            text=o["text"],
            reasoning=o["reasoning"],
            answer=o["answer"],
            finish_reason=o["finish_reason"],
            prompt_tokens=o["prompt_tokens"],
            completion_tokens=o["completion_tokens"],
            empty=judge.empty(o),
        )
        for i, o in enumerate(report["outputs"], 1)
    ]


def sampling(report: dict[str, Any]) -> list[SamplingRow]:
    """The effective parameters, each with its source (spec.effective's order: spec, file, neutral value)."""
    asked = report["spec"]["sampling"]
    found = ((report.get("model_config") or {}).get("generation_config")) or {}
    rows = []
    for name, value in report["sampling"].items():
        if asked.get(name) is not None or name in ("temperature", "max_tokens", "seed"):
            source = SPEC
        elif found.get(name) is not None:
            source = GENERATION_CONFIG
        else:
            source = NEUTRAL
        rows.append(SamplingRow(name=name, value=value, source=source))
    return rows


def spelled(found: dict[str, Any] | None) -> dict[str, str] | None:
    """A configuration file's values as the file spells them (JSON: 1e-06, 1000000.0, true), not reformatted."""
    return None if found is None else {key: json.dumps(value, ensure_ascii=False) for key, value in found.items()}


def run_context(report: dict[str, Any], judged: dict[str, Any]) -> dict[str, Any]:
    """The smoke section of a run page. judged: outcome and reasons as stored."""
    config: ModelConfig | None = report.get("model_config")
    return {
        **judged,
        "spec": report["spec"],
        "backend": report["backend"],
        "device_kind": report["device_kind"],
        "outputs": outputs(report),
        "sampling": sampling(report),
        "config": spelled(config["config"]) if config else None,
        "generation_config": spelled(config["generation_config"]) if config else None,
        "versions": report["versions"],
    }


def section(session: Session, run: Run, text: str | None, comparison: str | None) -> dict[str, Any] | None:
    """The dashboard's entry: the section's context, or None while the run has no report."""
    row = session.get(models.SmokeReport, run.id)
    if row is None:
        return None
    return run_context(row.report, {"outcome": row.outcome, "reasons": row.reasons})
