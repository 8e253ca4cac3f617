"""When to try a notification again: the Standard Webhooks schedule, stretched to about three days."""

from __future__ import annotations

import random

# seconds after the previous attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 20 h (about 72 h in all)
SCHEDULE_S = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000)
JITTER = 0.2
MAX_RETRY_AFTER_S = 24 * 3600


def next_delay(
    attempts: int,
    retry_after_s: float | None,
    schedule: tuple[float, ...] = SCHEDULE_S,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next try after `attempts` failed ones; None when the schedule is used up.

    A receiver's Retry-After is honoured when it asks for longer than the schedule (up to a day)."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    jittered = base * (1 + (rng or random).uniform(-JITTER, JITTER))
    if retry_after_s is not None:
        return max(jittered, min(retry_after_s, MAX_RETRY_AFTER_S))
    return jittered


def retryable(status_code: int | None, retry_after_s: float | None) -> bool:
    """Whether a refused API call (a commit status) is worth repeating.

    Outages, timeouts and rate limits are; a refused token or an unknown commit is not."""
    return status_code is None or status_code >= 500 or status_code in (408, 429) or retry_after_s is not None
