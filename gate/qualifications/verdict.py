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


# Why a qualification is not (yet) a pass, per check: what pages and reports say in the reader's language.
WAITS, NOT_JUDGED, FAILED_GATE, UNCOMPARED, NOTHING_GATED = (
    "waiting", "not_judged", "failed_gate", "not_comparable", "nothing_gated",
)  # fmt: skip


@dataclass(frozen=True)
class Cause:
    code: str  # WAITS, NOT_JUDGED, FAILED_GATE, UNCOMPARED or NOTHING_GATED
    check: str | None = None
    run_id: int | None = None
    detail: str | None = None  # the run's status (not judged) or why it waits

    def sentence(self) -> str:
        """The cause in English, as the API says it."""
        named = f"{self.check} (run {self.run_id})"
        return {
            WAITS: f"{named} is waiting: {self.detail}",
            NOT_JUDGED: f"{named} {self.detail}: it was not judged",
            FAILED_GATE: f"{named} failed its gate",
            UNCOMPARED: f"{named} is not comparable",
            NOTHING_GATED: "no check was gated: nothing was judged",
        }[self.code]


@dataclass(frozen=True)
class Overall:
    status: str  # waiting (a check no worker can take), running, finished
    verdict: str | None  # once finished: pass, fail, not_comparable, run_failed
    causes: list[Cause]  # per check that kept the verdict from pass, or holds the qualification up

    @property
    def reasons(self) -> list[str]:
        return [cause.sentence() for cause in self.causes]


def no_worker(backend: str, labels: list[str]) -> str:
    """Why a queued run has no taker (the page builds the same sentence in the reader's language)."""
    named = f" and labels {', '.join(labels)}" if labels else ""
    return f"no worker with backend {backend}{named} is connected"


def counted(check: CheckState) -> bool:
    """Whether a finished check's verdict counts: gated, and its kind judged it."""
    return check.gated and check.verdict is not None


def overall(checks: list[CheckState]) -> Overall:
    waiting = [Cause(WAITS, c.name, c.run_id, c.waiting) for c in checks if c.waiting]
    if any(c.status not in TERMINAL for c in checks):
        return Overall(WAITING if waiting else RUNNING, None, waiting)
    broken = [Cause(NOT_JUDGED, c.name, c.run_id, c.status) for c in checks if c.status != "succeeded"]
    if broken:
        return Overall(FINISHED, RUN_FAILED, broken)
    failed = [Cause(FAILED_GATE, c.name, c.run_id) for c in checks if counted(c) and c.verdict == FAIL]
    if failed:
        return Overall(FINISHED, FAIL, failed)
    uncompared = [Cause(UNCOMPARED, c.name, c.run_id) for c in checks if counted(c) and c.verdict == NOT_COMPARABLE]
    if uncompared:
        return Overall(FINISHED, NOT_COMPARABLE, uncompared)
    if not any(counted(c) for c in checks):
        return Overall(FINISHED, NOT_COMPARABLE, [Cause(NOTHING_GATED)])
    return Overall(FINISHED, PASS, [])
