"""A sharded run's running estimate (issue 15): after each shard, how many questions were answered, how many
right, and the band the final score (all N questions) still lies in, which narrows as questions are answered.

The band is the stop rules' own: the confidence sequence when the baseline entry asks for early stop, else the
range of final scores still reachable (certainty). A trail is `{"total": N, "points": [[answered, right, low,
high], ...]}`.
"""

from __future__ import annotations

from typing import Any

MAX_POINTS = 5000  # 1,319 GSM8K questions make 35 shards; a far longer list is not a run's


def point(answered: int, right: int, band: tuple[float, float]) -> list[Any]:
    return [answered, right, round(band[0], 6), round(band[1], 6)]


def problem(value: Any) -> str | None:
    """Why `value` is not a trail (one sentence), or None when it is one."""
    if not isinstance(value, dict) or set(value) != {"total", "points"}:
        return "the running estimate is an object with total and points"
    total, points = value["total"], value["points"]
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        return "the running estimate's total is a whole number of questions, at least 1"
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        return f"the running estimate's points are a list of at most {MAX_POINTS}"
    previous = 0
    for item in points:
        if not (isinstance(item, list) and len(item) == 4):
            return "each point of the running estimate is [answered, right, low, high]"
        answered, right, low, high = item
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (answered, right)):
            return "answered and right are whole numbers"
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)):
            return "low and high are numbers"
        if not 0 <= right <= answered <= total or answered <= previous:
            return "answered grows from point to point up to the total, and right never exceeds it"
        if not 0.0 <= low <= high <= 1.0:
            return "the band's low and high are scores with 0 <= low <= high <= 1"
        previous = answered
    return None


def parsed(value: Any) -> dict[str, Any] | None:
    """The trail if `value` is a well-formed one with points, else None (a stored file's extra is never trusted)."""
    return value if problem(value) is None and value["points"] else None
