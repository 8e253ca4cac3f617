"""lm-eval output files -> scores, eval profiles and per-sample outcomes: the one place that knows their keys.

Shapes (lm-eval 0.4.x): `results_<ts>.json` holds `results[task]["<metric>,<filter>"]` and
`"<metric>_stderr,<filter>"`, `n-shot`, `n-samples`, `versions`, `configs[task].generation_kwargs`,
`config` (model, model_args, limit, gen_kwargs), `chat_template_sha`, `fewshot_as_multiturn`, `task_hashes`.
`samples_<task>_<ts>.jsonl` holds one line per document and filter: `doc_id`, `doc`, `target`,
`filtered_resps`, `filter`, `doc_hash` and one key per metric.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from gate.errors import InvalidInput

SAMPLES_NAME = re.compile(r"samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d.\-]+\.jsonl$")
# Mean of the sample metric against the aggregated score: both come from the same floats.
SCORE_MATCH_TOLERANCE = 1e-9
ANSWER_MAX_CHARS = 2000  # per-sample text kept in the store; the raw file keeps everything


@dataclass(frozen=True)
class TaskScore:
    task: str
    metric: str  # lm-eval key, "<metric>,<filter>"
    value: float
    stderr: float | None
    n_samples: int | None


@dataclass(frozen=True)
class SampleOutcome:
    task: str
    filter: str
    doc_id: int
    doc_hash: str
    correct: bool
    filtered_answer: str
    target: str
    question: str | None


@dataclass(frozen=True)
class ParsedResults:
    raw: dict[str, Any]
    scores: list[TaskScore]
    profiles: dict[str, dict[str, Any]]  # task -> eval profile

    @property
    def tasks(self) -> list[str]:
        return list(self.profiles)

    def score(self, task: str, metric: str) -> TaskScore | None:
        return next((s for s in self.scores if s.task == task and s.metric == metric), None)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where} must be a number, got {value!r}", field="results")
    if not math.isfinite(value):
        raise InvalidInput(f"{where} is {value!r}: scores must be finite", field="results")
    return float(value)


def _model_args(raw: Any) -> dict[str, Any]:
    """lm-eval records model_args as a dict, or as the CLI's "k=v,k=v" string."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw:
        return dict(part.split("=", 1) for part in raw.split(",") if "=" in part)
    return {}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def eval_profile(raw: dict[str, Any], task: str) -> dict[str, Any]:
    config = raw.get("config") or {}
    task_config = (raw.get("configs") or {}).get(task) or {}
    model_args = _model_args(config.get("model_args"))
    generation = dict(task_config.get("generation_kwargs") or {})
    generation.update(config.get("gen_kwargs") or {})
    n_samples = (raw.get("n-samples") or {}).get(task) or {}
    version = (raw.get("versions") or {}).get(task)
    return {
        "task": task,
        "num_fewshot": (raw.get("n-shot") or {}).get(task, task_config.get("num_fewshot")),
        "apply_chat_template": raw.get("chat_template") is not None,
        "chat_template_sha": raw.get("chat_template_sha"),
        "fewshot_as_multiturn": bool(raw.get("fewshot_as_multiturn")),
        "system_instruction_sha": raw.get("system_instruction_sha"),
        "generation_kwargs": dict(sorted(generation.items())),
        "enable_thinking": _truthy(model_args["enable_thinking"]) if "enable_thinking" in model_args else None,
        "think_end_token": model_args.get("think_end_token"),
        "task_version": None if version is None else str(version),
        "task_hash": (raw.get("task_hashes") or {}).get(task),
        "limit": config.get("limit"),
        "n_original": n_samples.get("original"),
        "n_effective": n_samples.get("effective"),
        "model": config.get("model"),
        "model_args": model_args,
        "batch_size": config.get("batch_size"),
        "lm_eval_version": raw.get("lm_eval_version"),
    }


def parse_results(content: bytes) -> ParsedResults:
    try:
        raw = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"results is not valid JSON: {exc}", field="results") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), dict) or not raw["results"]:
        raise InvalidInput("results has no 'results' mapping: is this an lm-eval results_*.json?", field="results")
    scores: list[TaskScore] = []
    profiles: dict[str, dict[str, Any]] = {}
    for task, metrics in raw["results"].items():
        if not isinstance(metrics, dict):
            raise InvalidInput(f"results.{task} must be a mapping", field="results")
        profile = eval_profile(raw, task)
        profiles[task] = profile
        for key, value in metrics.items():
            if "," not in key or "_stderr," in key or key in ("name", "alias", "sample_len"):
                continue
            metric, flt = key.split(",", 1)
            stderr = metrics.get(f"{metric}_stderr,{flt}")
            scores.append(
                TaskScore(
                    task=task,
                    metric=key,
                    value=_number(value, f"results.{task}[{key!r}]"),
                    stderr=None if stderr in (None, "N/A") else _number(stderr, f"results.{task} stderr of {key}"),
                    n_samples=profile["n_effective"] or metrics.get("sample_len"),
                )
            )
    return ParsedResults(raw=raw, scores=scores, profiles=profiles)


def samples_task(filename: str, results: ParsedResults) -> str:
    """The task a samples file belongs to: from lm-eval's file name, or the only task of the results."""
    match = SAMPLES_NAME.search(filename)
    if match:
        return match.group("task")
    if len(results.tasks) == 1:
        return results.tasks[0]
    raise InvalidInput(f"cannot tell the task of samples file {filename!r}: name it samples_<task>_<ts>.jsonl")


def _text(value: Any) -> str:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:ANSWER_MAX_CHARS]


def parse_samples(content: bytes, task: str, results: ParsedResults) -> list[SampleOutcome]:
    """Parse one samples file and check it matches the results: same documents, same scores."""
    if task not in results.profiles:
        raise InvalidInput(f"samples are for task {task!r}, which the results do not contain", field="samples")
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput(f"samples line {number} is not valid JSON", field="samples") from None
        if not isinstance(row, dict) or not isinstance(row.get("doc_id"), int) or "filter" not in row:
            raise InvalidInput(f"samples line {number} lacks doc_id or filter", field="samples")
        key = (str(row["filter"]), row["doc_id"])
        if key in rows:
            raise InvalidInput(f"samples line {number} repeats doc_id {key[1]} for filter {key[0]}", field="samples")
        rows[key] = row

    outcomes: list[SampleOutcome] = []
    stored_filters: set[str] = set()
    for score in (s for s in results.scores if s.task == task):
        metric, flt = score.metric.split(",", 1)
        lines = [row for (f, _), row in rows.items() if f == flt]
        expected = results.profiles[task]["n_effective"]
        if expected is not None and len(lines) != expected:
            raise InvalidInput(
                f"samples for {task}/{flt} have {len(lines)} documents, the results counted {expected}",
                field="samples",
            )
        values = [_number(row.get(metric), f"samples doc {row['doc_id']} {metric}") for row in lines]
        mean = sum(values) / len(values) if values else float("nan")
        if not values or abs(mean - score.value) > SCORE_MATCH_TOLERANCE:
            raise InvalidInput(
                f"samples for {task} give {score.metric} = {mean!r}, the results say {score.value!r}: "
                "the files do not belong together",
                field="samples",
            )
        if flt in stored_filters:
            continue
        stored_filters.add(flt)
        for row, value in zip(lines, values, strict=True):
            doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
            outcomes.append(
                SampleOutcome(
                    task=task,
                    filter=flt,
                    doc_id=row["doc_id"],
                    doc_hash=str(row.get("doc_hash") or ""),
                    correct=value >= 1.0,
                    filtered_answer=_text(row.get("filtered_resps")),
                    target=_text(row.get("target")),
                    question=_text(doc["question"]) if "question" in doc else None,
                )
            )
    return outcomes
