"""A qualification's state and overall verdict from its checks' runs (pure).

Pass only when every gated check passed; a check whose run failed or was cancelled makes the qualification
"run failed" (the port was not judged, so it neither passed nor failed); a gated check that could not be compared
makes it "not comparable". A check whose kind judged nothing (a serving run with no reference) is measured, not
gated, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL, NOT_COMPARABLE, RUN_FAILED = "pass", "fail", "not_comparable", "run_failed"
WAITING, RUNNING, FINISHED = "waiting", "running", "finished"
TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class CheckState:
    name: str
    gated: bool
    run_id: int
    status: str  # the run's: queued, running, succeeded, failed, cancelled
    verdict: str | None  # the run's: pass, fail, not_comparable, or None (nothing judged)
    waiting: str | None = None  # for a queued run: why no worker can take it, when none can


@dataclass(frozen=True)
class Overall:
    status: str  # waiting (a check no worker can take), running, finished
    verdict: str | None  # once finished: pass, fail, not_comparable, run_failed
    reasons: list[str]  # one sentence per check that kept the verdict from pass, or holds the qualification up


def counted(check: CheckState) -> bool:
    """Whether a finished check's verdict counts: gated, and its kind judged it."""
    return check.gated and check.verdict is not None


def overall(checks: list[CheckState]) -> Overall:
    waiting = [f"{c.name} (run {c.run_id}) is waiting: {c.waiting}" for c in checks if c.waiting]
    if any(c.status not in TERMINAL for c in checks):
        return Overall(WAITING if waiting else RUNNING, None, waiting)
    broken = [f"{c.name} (run {c.run_id}) {c.status}: it was not judged" for c in checks if c.status != "succeeded"]
    if broken:
        return Overall(FINISHED, RUN_FAILED, broken)
    failed = [f"{c.name} (run {c.run_id}) failed its gate" for c in checks if counted(c) and c.verdict == FAIL]
    if failed:
        return Overall(FINISHED, FAIL, failed)
    uncompared = [
        f"{c.name} (run {c.run_id}) is not comparable" for c in checks if counted(c) and c.verdict == NOT_COMPARABLE
    ]
    if uncompared:
        return Overall(FINISHED, NOT_COMPARABLE, uncompared)
    if not any(counted(c) for c in checks):
        return Overall(FINISHED, NOT_COMPARABLE, ["no check was gated: nothing was judged"])
    return Overall(FINISHED, PASS, [])
