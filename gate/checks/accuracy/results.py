"""lm-eval output files -> scores, eval profiles and per-sample outcomes: the one place that knows their keys.

Reads what lm-eval 0.4.0 to 0.4.13 write; the shape moved between versions:
- `results[task]` holds `"<metric>,<filter>"` and `"<metric>_stderr,<filter>"` (0.3 wrote bare `acc`: refused).
- `config.model_args` is a dict, or the command line's `"k=v,k=v"` string; `config.gen_kwargs` likewise.
- Groups (mmlu, ...) list their members in `group_subtasks`, nested (mmlu -> mmlu_stem -> mmlu_anatomy). 0.4.0-0.4.2
  write group scores under `groups` as well as `results`, later versions in `results` (0.4.12+ in both again).
- A group's `n-shot`: 0.4.0-0.4.2 copy the first member's unchecked, 0.4.4-0.4.11 write none, 0.4.12+ one only when
  all members agree. gate always takes a group's n-shot and document counts from its leaf members.
- `n-samples` (original and effective document counts) exists from 0.4.3, for tasks only; `task_hashes`,
  `chat_template_sha` and `lm_eval_version` appear later still, so every key may be absent.
`samples_<task>_<ts>.jsonl` holds one line per document and filter: `doc_id`, `doc`, `target`, `filtered_resps`,
`filter`, `doc_hash` and one key per metric; a group writes one file per leaf member.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gate.checks.accuracy.profile import EvalProfile
from gate.errors import InvalidInput
from gate.runs.options import CONTROL
from gate.verdicts import trail

SAMPLES_NAME = re.compile(r"samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d.\-]+\.jsonl$")
# Mean of the sample metric against the aggregated score: both come from the same floats.
SCORE_MATCH_TOLERANCE = 1e-9
ANSWER_MAX_CHARS = 2000  # per-sample text kept in the store; the raw file keeps everything
NAME_MAX_CHARS = 200  # task and metric names (the store's column width)
FILTER_MAX_CHARS = 100
DOC_HASH_MAX_CHARS = 64
MAX_DOC_ID = 2**31 - 1
NON_METRIC_KEYS = ("name", "alias", "sample_len", "samples", "sample_count")
# A task name becomes part of URLs, file names and headers: lm-eval's names are plain identifiers
TASK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+\-]*")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys while the stored raw file keeps both: refuse instead."""
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise InvalidInput(f"the JSON object repeats the key {twice!r}")
    return mapping


def load_json(content: bytes | str, what: str) -> Any:
    """JSON as lm-eval writes it (NaN included), but no repeated keys and no nesting beyond the interpreter's limit."""
    try:
        return json.loads(content, object_pairs_hook=_unique_keys)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}", field=what.split()[0]) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidInput(f"{what} is not valid JSON: {reason}", field=what.split()[0]) from None


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
    raw_output: str | None  # the model's whole answer, reasoning included (cut at RAW_OUTPUT_MAX_CHARS)


@dataclass(frozen=True)
class ParsedResults:
    raw: dict[str, Any]
    scores: list[TaskScore]
    profiles: dict[str, EvalProfile]  # task -> eval profile

    @property
    def trail(self) -> dict[str, Any] | None:
        """A sharded run's running estimate, when the file carries a well-formed one."""
        return trail.parsed(_mapping(self.raw.get("sharded")).get("trail"))

    @property
    def tasks(self) -> list[str]:
        return list(self.profiles)

    def score(self, task: str, metric: str) -> TaskScore | None:
        return next((s for s in self.scores if s.task == task and s.metric == metric), None)

    def members(self, task: str, metric: str) -> list[str]:
        """The tasks whose documents a score of `task` counts: a group's leaf subtasks that report the metric."""
        profile = self.profiles.get(task)
        leaves = profile["subtasks"] if profile else []
        return [leaf for leaf in leaves if self.score(leaf, metric) is not None] or [task]


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where} must be a number, got {value!r}", field="results")
    if not math.isfinite(value):
        raise InvalidInput(f"{where} is {value!r}: scores must be finite", field="results")
    if isinstance(value, int) and float(value) != value:  # past 2**53: the store's float would keep another number
        raise InvalidInput(f"{where} is {value!r}: too large to store exactly", field="results")
    return float(value)


def _stderr(value: Any, where: str) -> float | None:
    """lm-eval writes "N/A" (or NaN, for one document) where it has no standard error."""
    if value is None or value == "N/A" or (isinstance(value, float) and math.isnan(value)):
        return None
    stderr = _number(value, where)
    if stderr < 0:
        raise InvalidInput(f"{where} is {stderr!r}: a standard error cannot be negative", field="results")
    return stderr


MAX_COUNT = 2**31 - 1  # documents, shots: the store's integer columns


def _count(value: Any) -> int | None:
    """A count lm-eval wrote, or None where it wrote none; a negative or absurd count is an impossible file."""
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    if not 0 <= value <= MAX_COUNT:
        raise InvalidInput(f"results has an impossible count {value}", field="results")
    return value


def key_values(raw: Any) -> dict[str, Any]:
    """lm-eval records model_args and gen_kwargs as a dict, or as the command line's "k=v,k=v" string."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        pairs = (part.split("=", 1) for part in raw.split(",") if "=" in part)
        return {key.strip(): value.strip() for key, value in pairs if key.strip()}
    return {}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _leaves(group: str, members: Mapping[str, list[str]], path: frozenset[str] = frozenset()) -> list[str]:
    leaves: list[str] = []
    for child in members.get(group, []):
        if child in path or child == group:  # a file that nests a group in itself
            continue
        for leaf in _leaves(child, members, path | {group}) if child in members else [child]:
            if leaf not in leaves:
                leaves.append(leaf)
    return leaves


class _Reader:
    """One results file, read once: the shape differences between lm-eval versions stay in here."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.config = _mapping(raw.get("config"))
        self.configs = _mapping(raw.get("configs"))
        self.n_shot = _mapping(raw.get("n-shot"))
        self.n_samples = _mapping(raw.get("n-samples"))
        self.entries = {**_mapping(raw.get("groups")), **raw["results"]}
        self.members = {
            group: [child for child in children if isinstance(child, str)]
            for group, children in _mapping(raw.get("group_subtasks")).items()
            if isinstance(children, list) and children
        }
        self.leaves = {group: _leaves(group, self.members) for group in self.members}

    def own_shots(self, task: str) -> tuple[int | None, str]:
        shots = _count(self.n_shot.get(task))
        if shots is not None:
            return shots, "n-shot"
        shots = _count(_mapping(self.configs.get(task)).get("num_fewshot"))
        if shots is not None:
            return shots, "configs"
        return None, "the file has no n-shot entry for it"

    def shots(self, task: str) -> tuple[int | None, str]:
        leaves = self.leaves.get(task)
        if not leaves:
            return self.own_shots(task)
        per_leaf = {leaf: self.own_shots(leaf)[0] for leaf in leaves}
        distinct = sorted({shots for shots in per_leaf.values() if shots is not None})
        if len(distinct) > 1:
            counts = ", ".join(f"{sum(1 for s in per_leaf.values() if s == n)} at {n}-shot" for n in distinct)
            return None, f"its subtasks disagree ({counts})"
        if len(distinct) == 1 and None not in per_leaf.values():
            return distinct[0], "subtasks"
        own = self.own_shots(task)
        if own[0] is not None:
            return own
        if distinct:
            return distinct[0], "subtasks (some have no n-shot entry)"
        return None, "neither the group nor its subtasks have an n-shot entry"

    def documents(self, task: str) -> tuple[int | None, int | None]:
        """Original and effective document counts; a group's are the sums over its leaves."""
        counts = [_mapping(self.n_samples.get(leaf)) for leaf in self.leaves.get(task) or [task]]
        original = [_count(c.get("original")) for c in counts]
        effective = [_count(c.get("effective")) for c in counts]
        return (
            None if None in original else sum(o for o in original if o is not None),
            None if None in effective else sum(e for e in effective if e is not None),
        )

    def metric_count(self, task: str, metric: str, metrics: dict[str, Any]) -> int | None:
        """Documents behind one score: a group's is the sum over the leaves that report the metric."""
        leaves = self.leaves.get(task)
        if leaves:
            scored = [leaf for leaf in leaves if metric in _mapping(self.entries.get(leaf))]
            counts = [self.documents(leaf)[1] for leaf in scored]
            if scored and None not in counts:
                return sum(c for c in counts if c is not None)
            return _count(_mapping(metrics.get("sample_count")).get(metric)) or _count(metrics.get("sample_len"))
        return self.documents(task)[1] or _count(metrics.get("sample_len"))

    def profile(self, task: str) -> EvalProfile:
        model_args = key_values(self.config.get("model_args"))
        generation = dict(key_values(_mapping(self.configs.get(task)).get("generation_kwargs")))
        generation.update(key_values(self.config.get("gen_kwargs")))
        version = _mapping(self.raw.get("versions")).get(task)
        shots, shots_from = self.shots(task)
        original, effective = self.documents(task)
        limit = self.config.get("limit")
        model = self.config.get("model")
        stopped = _stopped(self.raw.get("stopped"), original)
        return EvalProfile(
            **({"stopped": stopped} if stopped is not None else {}),  # type: ignore[typeddict-item]
            task=task,
            num_fewshot=shots,
            num_fewshot_from=shots_from,
            subtasks=self.leaves.get(task, []),
            groups=[group for group, children in self.members.items() if task in children and group != task],
            apply_chat_template=self.raw.get("chat_template") is not None,
            chat_template_sha=_text_or_none(self.raw.get("chat_template_sha")),
            fewshot_as_multiturn=bool(self.raw.get("fewshot_as_multiturn")),
            system_instruction_sha=_text_or_none(self.raw.get("system_instruction_sha")),
            generation_kwargs=dict(sorted(generation.items())),
            enable_thinking=_truthy(model_args["enable_thinking"]) if "enable_thinking" in model_args else None,
            think_end_token=_text_or_none(model_args.get("think_end_token")),
            task_version=None if version is None else str(version),
            task_hash=_text_or_none(_mapping(self.raw.get("task_hashes")).get(task)),
            limit=limit if isinstance(limit, (int, float)) and not isinstance(limit, bool) else None,
            n_original=original,
            n_effective=effective,
            model=_text_or_none(model),
            model_args=model_args,
            batch_size=self.config.get("batch_size"),
            lm_eval_version=_text_or_none(self.raw.get("lm_eval_version")),
        )


def _stopped(value: Any, original: int | None) -> dict[str, Any] | None:
    """A sharded run's early stop, when its shape is whole: it turns the run into a fail, never a pass."""
    if not isinstance(value, dict):
        return None
    at, of, bound = value.get("at"), value.get("of"), value.get("bound")
    if not (isinstance(at, int) and isinstance(of, int)) or isinstance(at, bool) or isinstance(of, bool):
        return None
    if not 0 < at < of or (original is not None and of != original):
        return None
    if not isinstance(value.get("rule"), str) or not isinstance(value.get("reason"), str):
        return None
    if not (isinstance(bound, list) and len(bound) == 2 and all(isinstance(b, (int, float)) for b in bound)):
        return None
    return {"at": at, "of": of, "rule": value["rule"], "reason": value["reason"], "bound": [float(b) for b in bound]}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _metric_keys(metrics: dict[str, Any]) -> list[str]:
    return [key for key in metrics if "," in key and "_stderr," not in key and key not in NON_METRIC_KEYS]


def _refuse_lm_eval_03(entries: dict[str, Any]) -> None:
    """lm-eval 0.3 wrote `acc` where 0.4 writes `acc,none`: its metrics cannot be matched to a baseline's."""
    metric_dicts = [metrics for metrics in entries.values() if isinstance(metrics, dict)]
    if any(_metric_keys(metrics) for metrics in metric_dicts):
        return
    bare = [key for metrics in metric_dicts for key in metrics if key not in NON_METRIC_KEYS and "," not in key]
    if bare:
        raise InvalidInput(
            f"results is an lm-eval 0.3 file (metrics such as {bare[0]!r} carry no filter): gate reads lm-eval 0.4 "
            "output, so re-run the evaluation with lm-eval 0.4 or later and upload its results_*.json",
            field="results",
        )


def parse_results(content: bytes) -> ParsedResults:
    raw = load_json(content, "results")
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), dict) or not raw["results"]:
        raise InvalidInput("results has no 'results' mapping: is this an lm-eval results_*.json?", field="results")
    reader = _Reader(raw)
    _refuse_lm_eval_03(reader.entries)
    scores: list[TaskScore] = []
    profiles: dict[str, EvalProfile] = {}
    for task, metrics in reader.entries.items():
        if not isinstance(metrics, dict):
            raise InvalidInput(f"results.{task} must be a mapping", field="results")
        if len(task) > NAME_MAX_CHARS:
            raise InvalidInput(f"results has a task name longer than {NAME_MAX_CHARS} characters", field="results")
        if not TASK.fullmatch(task):
            raise InvalidInput(f"results has a task named {task[:80]!r}, not an lm-eval task name", field="results")
        profiles[task] = reader.profile(task)
        for key in _metric_keys(metrics):
            metric, flt = key.split(",", 1)
            if len(key) > NAME_MAX_CHARS or len(flt) > FILTER_MAX_CHARS or CONTROL.search(key):
                raise InvalidInput(f"results.{task} has a metric name that is too long: {key[:80]!r}", field="results")
            scores.append(
                TaskScore(
                    task=task,
                    metric=key,
                    value=_number(metrics[key], f"results.{task}[{key!r}]"),
                    stderr=_stderr(metrics.get(f"{metric}_stderr,{flt}"), f"results.{task} stderr of {key}"),
                    n_samples=reader.metric_count(task, key, metrics),
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
    return text[:ANSWER_MAX_CHARS].replace("\x00", "\ufffd")  # Postgres text cannot hold NUL; the raw file keeps it


RAW_OUTPUT_MAX_CHARS = 20_000  # a thinking model's answer: its reasoning and the last lines that are scored


def _raw_output(resps: Any) -> str | None:
    """The model's first response as generated (lm-eval's `resps`: one list of responses per request); generation
    tasks only, since a loglikelihood task logs (logprob, is_greedy) pairs, not text."""
    while isinstance(resps, list) and resps:
        resps = resps[0]
    if not isinstance(resps, str):
        return None
    if len(resps) > RAW_OUTPUT_MAX_CHARS:  # keep the start of the reasoning and the end, where the answer is
        half = RAW_OUTPUT_MAX_CHARS // 2
        resps = f"{resps[:half]}\n[… {len(resps) - RAW_OUTPUT_MAX_CHARS} characters cut …]\n{resps[-half:]}"
    return resps.replace("\x00", "\ufffd")


def _read_lines(content: bytes, metrics: set[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """One slim row per document and filter: what is checked and stored, not the prompts and responses lm-eval
    logs (a 60 MiB file would otherwise be held as a gigabyte of dictionaries)."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        row = load_json(line, f"samples line {number}")
        doc_id = row.get("doc_id") if isinstance(row, dict) else None
        if not isinstance(doc_id, int) or isinstance(doc_id, bool) or "filter" not in row:
            raise InvalidInput(f"samples line {number} lacks doc_id or filter", field="samples")
        if not 0 <= doc_id <= MAX_DOC_ID or len(str(row["filter"])) > FILTER_MAX_CHARS:
            raise InvalidInput(f"samples line {number} has an impossible doc_id or filter", field="samples")
        if len(str(row.get("doc_hash") or "")) > DOC_HASH_MAX_CHARS:
            raise InvalidInput(f"samples line {number} has a doc_hash longer than 64 characters", field="samples")
        key = (str(row["filter"]), doc_id)
        if key in rows:
            raise InvalidInput(f"samples line {number} repeats doc_id {doc_id} for filter {key[0]}", field="samples")
        doc = _mapping(row.get("doc"))
        rows[key] = {
            "doc_id": doc_id,
            "doc_hash": str(row.get("doc_hash") or ""),
            "answer": _text(row.get("filtered_resps")),
            "target": _text(row.get("target")),
            "question": _text(doc["question"]) if "question" in doc else None,
            "raw_output": _raw_output(row.get("resps")),
            "metrics": {metric: row.get(metric) for metric in metrics},
        }
    return rows


def _per_document(values: list[Any]) -> list[float] | None:
    """A metric lm-eval averages over documents (acc, exact_match) logs one number in [0, 1] per line. Corpus metrics
    (f1 over the whole set, bleu, perplexity) log other values per line and cannot be checked against the score."""
    if values and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1 for v in values
    ):
        return [float(v) for v in values]
    return None


def parse_samples(content: bytes, task: str, results: ParsedResults) -> list[SampleOutcome]:
    """Parse one samples file and check it matches the results: same documents, same scores."""
    if task not in results.profiles:
        raise InvalidInput(f"samples are for task {task!r}, which the results do not contain", field="samples")
    rows = _read_lines(content, {s.metric.split(",", 1)[0] for s in results.scores if s.task == task})
    expected = results.profiles[task]["n_effective"]
    outcomes: list[SampleOutcome] = []
    stored_filters: set[str] = set()
    for score in (s for s in results.scores if s.task == task):
        metric, flt = score.metric.split(",", 1)
        lines = [row for (f, _), row in rows.items() if f == flt]
        if expected is not None and len(lines) != expected:
            raise InvalidInput(
                f"samples for {task}/{flt} have {len(lines)} documents, the results counted {expected}",
                field="samples",
            )
        if not lines:
            raise InvalidInput(f"samples for {task} have no documents for filter {flt!r}", field="samples")
        values = _per_document([row["metrics"][metric] for row in lines])
        if values is None:
            continue
        mean = sum(values) / len(values)
        if abs(mean - score.value) > SCORE_MATCH_TOLERANCE:
            raise InvalidInput(
                f"samples for {task} give {score.metric} = {mean!r}, the results say {score.value!r}: "
                "the files do not belong together",
                field="samples",
            )
        if flt in stored_filters:
            continue
        stored_filters.add(flt)
        outcomes += [
            SampleOutcome(
                task=task,
                filter=flt,
                doc_id=row["doc_id"],
                doc_hash=row["doc_hash"],
                correct=value >= 1.0,
                filtered_answer=row["answer"],
                target=row["target"],
                question=row["question"],
                raw_output=row["raw_output"],
            )
            for row, value in zip(lines, values, strict=True)
        ]
    return outcomes


MODEL_NAME_MAX_CHARS = 500  # the store's column widths
MODEL_TYPE_MAX_CHARS = 32


def provenance_text(value: str, field: str, max_chars: int) -> str:
    """A name an imported file records (a hub id, a Windows path, an lm-eval model type): kept as written,
    only bounded and printable, since nothing loads it."""
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field} is empty", field=field)
    if len(text) > max_chars:
        raise InvalidInput(f"{field} is longer than {max_chars} characters", field=field)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs") for char in text):
        raise InvalidInput(f"{field} contains control characters", field=field)
    return text


def named_model(results: ParsedResults) -> str | None:
    """The model a results file names: lm-eval's model_name, else model_args' pretrained or (API models) model."""
    args = key_values(_mapping(results.raw.get("config")).get("model_args"))
    for value in (results.raw.get("model_name"), args.get("pretrained"), args.get("model")):
        if isinstance(value, str) and value.strip():
            return value
    return None


def model_type(results: ParsedResults) -> str | None:
    """lm-eval's --model (hf, vllm, sae_steered_beta, ...), as the file records it."""
    value = _mapping(results.raw.get("config")).get("model")
    return value if isinstance(value, str) and value.strip() else None
