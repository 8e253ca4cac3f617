"""The eval profile: the protocol settings that must match for two scores to be comparable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict


class EvalProfile(TypedDict):
    """How one task of a run was evaluated, read from lm-eval's results file (stored as JSON per task)."""

    task: str
    num_fewshot: int | None
    # where num_fewshot came from: "n-shot", "configs", "subtasks" (a group's members all agree), or why it is unknown
    num_fewshot_from: str
    subtasks: list[str]  # the leaf tasks a group scores; [] for a task
    groups: list[str]  # the groups of the file that list this task as a member; [] for a top-level task
    apply_chat_template: bool
    chat_template_sha: str | None
    fewshot_as_multiturn: bool
    system_instruction_sha: str | None
    generation_kwargs: dict[str, Any]
    enable_thinking: bool | None
    think_end_token: str | None
    task_version: str | None
    task_hash: str | None
    limit: float | None
    n_original: int | None  # a group's: the sum over its subtasks
    n_effective: int | None
    model: str | None  # lm-eval's model type (hf, vllm, local-completions, ...): provenance
    model_args: dict[str, Any]
    batch_size: Any
    lm_eval_version: str | None
    # a sharded run stopped early (gate.checks.accuracy.sharded): {at, of, rule, reason, bound}
    stopped: NotRequired[dict[str, Any]]


# Settings that change what a score means. A baseline with a recorded profile is compared on all of them.
PROTOCOL_KEYS = (
    "num_fewshot",
    "apply_chat_template",
    "chat_template_sha",
    "fewshot_as_multiturn",
    "generation_kwargs",
    "enable_thinking",
    "think_end_token",
    "task_version",
)


def protocol_of(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable part of a run's eval profile."""
    return {key: profile.get(key) for key in PROTOCOL_KEYS}


def protocol_differences(candidate: Mapping[str, Any], reference: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two protocols, one sentence each."""
    differences = []
    for key in PROTOCOL_KEYS:
        if candidate.get(key) != reference.get(key):
            differences.append(f"{key} differs: run has {candidate.get(key)!r}, baseline has {reference.get(key)!r}")
    return differences


def top_level(profiles: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Tasks no group of the run contains: what a person asked lm-eval for (mmlu, not its 57 subjects)."""
    return [task for task, profile in profiles.items() if not profile.get("groups")]


def not_gated(profiles: Mapping[str, Mapping[str, Any]], gated: list[str]) -> list[str]:
    """Top-level tasks with no baseline entry, neither themselves nor through a member."""
    judged = set(gated)
    return [
        task
        for task in top_level(profiles)
        if task not in judged and not judged & set(profiles[task].get("subtasks") or [])
    ]
