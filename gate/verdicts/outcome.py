"""The outcome of a check and how outcomes add up to a run's verdict."""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_COMPARABLE = "not_comparable"


def overall(outcomes: list[Outcome]) -> Outcome | None:
    """A run's verdict over its gated tasks: any failure fails it; anything not comparable taints a pass."""
    if not outcomes:
        return None
    if Outcome.FAIL in outcomes:
        return Outcome.FAIL
    if Outcome.NOT_COMPARABLE in outcomes:
        return Outcome.NOT_COMPARABLE
    return Outcome.PASS


def weights_note(same_weights: bool | None) -> str | None:
    """What the model fingerprints say of a run judged against a reference run; None when either has none."""
    if same_weights is None:
        return None
    if same_weights:
        return (
            "identical weights: the run evaluated the same model files as the reference run (equal model "
            "fingerprints), so any difference comes from the stack (backend, device, settings), not the weights"
        )
    return "different weights: the run's model files differ from the reference run's (model fingerprints differ)"
