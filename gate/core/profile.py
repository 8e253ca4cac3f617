"""The eval profile: the protocol settings that must match for two scores to be comparable."""

from __future__ import annotations

from typing import Any

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


def protocol_of(profile: dict[str, Any]) -> dict[str, Any]:
    """The comparable part of a run's eval profile."""
    return {key: profile.get(key) for key in PROTOCOL_KEYS}


def protocol_differences(candidate: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """Human-readable differences between two protocols, one sentence each."""
    differences = []
    for key in PROTOCOL_KEYS:
        if candidate.get(key) != reference.get(key):
            differences.append(f"{key} differs: run has {candidate.get(key)!r}, baseline has {reference.get(key)!r}")
    return differences
