"""Every baseline entry names a metric key lm-eval writes for its task, read from lm-eval's own task configs: a leaf
writes `<metric>,<filter>` for each metric and filter it lists (`none` without filters), a group
`<metric>,<filter_list>` for each aggregated metric. A key lm-eval never writes would leave the entry unjudged."""

from __future__ import annotations

from typing import Any

import pytest

from gate.baselines.files import Reference, read_dir
from gate.settings import Settings

REFERENCES = [ref for spec in read_dir(Settings().baselines_dir) for ref in spec.references]


@pytest.fixture(scope="module")
def index() -> dict[str, Any]:
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def metric_names(metric: dict[str, Any]) -> list[str]:
    """A metric given as a function writes the keys it returns: HumanEval's utils.pass_at_k returns code_eval's
    {"pass@k": ...} for each k it is given."""
    name = metric["metric"]
    if name.endswith(".pass_at_k"):
        return [f"pass@{k}" for k in metric["k"]]
    return [name]


def produced(name: str, index: dict[str, Any]) -> set[str]:
    from lm_eval.tasks._index import Kind

    entry = index[name]
    if entry.kind == Kind.GROUP:
        keys = set()
        for metric in entry.cfg.get("aggregate_metric_list", []):
            filters = metric.get("filter_list", "none")
            keys |= {f"{metric['metric']},{f}" for f in ([filters] if isinstance(filters, str) else filters)}
        return keys
    filters = [f["name"] for f in entry.cfg.get("filter_list", [])] or ["none"]
    return {f"{m},{f}" for metric in entry.cfg["metric_list"] for m in metric_names(metric) for f in filters}


def leaf_fewshots(name: str, index: dict[str, Any]) -> set[int | None]:
    from lm_eval.tasks._index import Kind

    entry = index[name]
    if entry.kind == Kind.GROUP:
        return {n for member in entry.cfg["task"] for n in leaf_fewshots(member, index)}
    if entry.kind == Kind.TAG:
        return {n for task in entry.tags for n in leaf_fewshots(task, index)}
    return {entry.cfg.get("num_fewshot")}


def test_the_official_entries_are_the_four_benchmarks() -> None:
    assert {(r.benchmark, r.task, r.metric, r.num_fewshot) for r in REFERENCES} >= {
        ("GSM8K", "gsm8k", "exact_match,strict-match", 5),
        ("MMLU", "mmlu", "acc,none", 5),
        ("MATH", "minerva_math", "exact_match,none", 4),
        ("HumanEval", "humaneval", "pass@1,create_test", 0),
    }


@pytest.mark.parametrize("ref", REFERENCES, ids=lambda r: f"{r.task}:{r.metric}")
def test_each_baseline_metric_is_one_its_task_writes(ref: Reference, index: dict[str, Any]) -> None:
    assert ref.metric in produced(ref.task, index)
    # upstream's shots, or none set (MMLU's subtasks: the run passes --num_fewshot 5)
    assert leaf_fewshots(ref.task, index) <= {None, ref.num_fewshot}
