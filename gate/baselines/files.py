"""Baselines as data: read and validate `baselines/*.yaml`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gate.errors import InvalidInput

KIND_PUBLISHED = "published"  # a published figure, protocol unknown
KIND_REFERENCE_RUN = "reference_run"  # a run promoted to baseline: its protocol is recorded


@dataclass(frozen=True)
class Reference:
    """One benchmark entry of a baseline."""

    benchmark: str
    task: str
    metric: str
    num_fewshot: int | None
    score: float
    tolerance_pp: float = 2.0
    two_sided: bool = True
    stderr: float | None = None
    n_samples: int | None = None
    # None: a published figure whose protocol is unknown (compared on task, n-shot and metric only).
    protocol: dict[str, Any] | None = None


@dataclass(frozen=True)
class BaselineSpec:
    name: str
    model: str
    source: str
    kind: str
    references: list[Reference]
    checks: dict[str, dict[str, Any]] | None = None  # kind -> settings, opaque here: each kind validates its own


def _reference(entry: dict[str, Any], where: str) -> Reference:
    for key in ("benchmark", "task", "metric", "score"):
        if key not in entry:
            raise InvalidInput(f"{where}: missing {key!r}", field=key)
    score = entry["score"]
    if not isinstance(score, (int, float)) or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise InvalidInput(f"{where}: score must be a number in [0, 1], got {score!r}", field="score")
    sided = entry.get("sided", "two-sided")
    if sided not in ("two-sided", "lower"):
        raise InvalidInput(f"{where}: sided must be 'two-sided' or 'lower', got {sided!r}", field="sided")
    tolerance = float(entry.get("tolerance_pp", 2.0))
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidInput(f"{where}: tolerance_pp must be a non-negative number", field="tolerance_pp")
    return Reference(
        benchmark=str(entry["benchmark"]),
        task=str(entry["task"]),
        metric=str(entry["metric"]),
        num_fewshot=entry.get("num_fewshot"),
        score=float(score),
        tolerance_pp=tolerance,
        two_sided=sided == "two-sided",
        stderr=entry.get("stderr"),
        n_samples=entry.get("n_samples"),
        protocol=entry.get("protocol"),
    )


def parse(document: dict[str, Any], where: str) -> BaselineSpec:
    for key in ("name", "model", "source", "scores"):
        if key not in document:
            raise InvalidInput(f"{where}: missing {key!r}", field=key)
    kind = document.get("kind", KIND_PUBLISHED)
    if kind not in (KIND_PUBLISHED, KIND_REFERENCE_RUN):
        raise InvalidInput(f"{where}: unknown kind {kind!r}", field="kind")
    references = [_reference(entry, f"{where} scores[{i}]") for i, entry in enumerate(document["scores"])]
    tasks = [r.task for r in references]
    if len(set(tasks)) != len(tasks):
        raise InvalidInput(f"{where}: a task appears twice", field="scores")
    checks = _checks(document.get("checks"), where)
    early = {
        str(entry["task"]): _early_stop(entry["early_stop"], f"{where} scores[{i}]")
        for i, entry in enumerate(document["scores"])
        if entry.get("early_stop") is not None
    }
    if early:  # stored with the baseline's checks: the server hands it to the worker with each claim
        accuracy = dict((checks or {}).get("accuracy", {}))
        checks = {**(checks or {}), "accuracy": {**accuracy, "early_stop": early}}
    return BaselineSpec(
        name=str(document["name"]),
        model=str(document["model"]),
        source=str(document["source"]),
        kind=kind,
        references=references,
        checks=checks,
    )


def _early_stop(setting: Any, where: str) -> dict[str, float]:
    """A score entry's `early_stop: {alpha: 0.05}`: a sharded run may stop once a confidence sequence at that
    error rate puts the score outside the band (the certainty rule applies to every run without it)."""
    alpha = setting.get("alpha") if isinstance(setting, dict) else None
    if set(setting if isinstance(setting, dict) else ()) - {"alpha"} or not isinstance(alpha, (int, float)):
        raise InvalidInput(f"{where}: early_stop must be {{alpha: a number}}", field="early_stop")
    if not 0 < alpha <= 0.5:
        raise InvalidInput(f"{where}: early_stop alpha must be in (0, 0.5], got {alpha!r}", field="early_stop")
    return {"alpha": float(alpha)}


def _checks(checks: Any, where: str) -> dict[str, dict[str, Any]] | None:
    """The optional `checks` mapping (kind -> settings); only its shape is checked here."""
    if checks is None:
        return None
    if not isinstance(checks, dict) or not all(
        isinstance(kind, str) and isinstance(settings, dict) for kind, settings in checks.items()
    ):
        raise InvalidInput(f"{where}: checks must map a check kind to its settings", field="checks")
    return checks


def read_dir(directory: Path) -> list[BaselineSpec]:
    if not directory.is_dir():
        raise InvalidInput(f"the baselines folder {directory} does not exist")
    specs = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            document = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise InvalidInput(f"{path} is not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
        if not isinstance(document, dict):
            raise InvalidInput(f"{path}: expected a mapping")
        specs.append(parse(document, str(path)))
    return specs
