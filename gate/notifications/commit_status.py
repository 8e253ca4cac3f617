"""Commit statuses on GitHub and GitLab: where they are posted and what they say (pure: no HTTP)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

GITHUB, GITLAB = "github-status", "gitlab-status"
KINDS = (GITHUB, GITLAB)
DEFAULT_API_URL = {GITHUB: "https://api.github.com", GITLAB: "https://gitlab.com/api/v4"}
DESCRIPTION_CHARS = 140  # GitHub refuses longer descriptions

# Repository and commit come from a CI payload and end up in a URL path: only plain names and hex SHAs pass.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")

# What each system calls gate's outcomes; an outcome missing here is reported as the system's error state.
_STATES = {
    GITHUB: {"pending": "pending", "pass": "success", "fail": "failure"},
    GITLAB: {"pending": "pending", "pass": "success", "fail": "failed", "cancelled": "canceled"},
}
_ERROR_STATE = {GITHUB: "error", GITLAB: "failed"}


class UnusableContext(ValueError):
    """The run's CI context does not name a repository and commit that a status can be posted to."""


@dataclass(frozen=True)
class Status:
    outcome: str  # pending | pass | fail | not_comparable | cancelled | failed
    description: str
    context: str  # the status's name on the commit: one per baseline


def status_url(kind: str, api_url: str, repository: str | None, commit: str | None) -> str:
    """The commit-status endpoint of `repository` at `commit` (GitHub: owner/name; GitLab: group/.../project)."""
    segments = (repository or "").split("/")
    if not all(_SEGMENT.fullmatch(s) for s in segments) or len(segments) < 2 or (kind == GITHUB and len(segments) != 2):
        raise UnusableContext(f"ci.repository must be {'owner/name' if kind == GITHUB else 'group/project'}")
    if not _COMMIT.fullmatch(commit or ""):
        raise UnusableContext("ci.commit must be a commit SHA (7 to 64 hex digits)")
    base = api_url.rstrip("/")
    if kind == GITHUB:
        return f"{base}/repos/{repository}/statuses/{commit}"
    return f"{base}/projects/{quote(repository or '', safe='')}/statuses/{commit}"


def outcome(run_status: str, verdict: str | None) -> str:
    if run_status in ("queued", "running"):
        return "pending"
    if run_status == "succeeded":
        return verdict or "not_comparable"
    return run_status  # failed | cancelled


def describe(result: str, run_id: int, deltas: Sequence[tuple[str, float | None]], reason: str | None) -> str:
    """One line for the commit page, e.g. 'fail · gsm8k -3.1 pp, mmlu +0.2 pp (run 12)'."""
    if result == "pending":
        text = f"queued · {', '.join(task for task, _ in deltas)} (run {run_id})"
    elif result in ("pass", "fail", "not_comparable"):
        parts = [f"{task} {delta:+.1f} pp" if delta is not None else task for task, delta in deltas]
        text = f"{result.replace('_', ' ')} · {', '.join(parts)} (run {run_id})"
    else:
        text = f"run {run_id} {result}" + (f": {reason}" if reason else "")
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


def context_name(baseline: str | None) -> str:
    return f"gate/{baseline}" if baseline else "gate"


def body(kind: str, status: Status, target_url: str) -> dict[str, str]:
    """The JSON body of the status request, in each system's field names."""
    state = _STATES[kind].get(status.outcome, _ERROR_STATE[kind])
    name_field = "context" if kind == GITHUB else "name"
    return {"state": state, "description": status.description, name_field: status.context, "target_url": target_url}


def headers(kind: str, token: str) -> dict[str, str]:
    if kind == GITHUB:
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
    return {"PRIVATE-TOKEN": token}
