"""The confidence sequence of `sequential`, vectorised over many simulated runs (numpy): for tests and bench/ only.

`sequential.ConfidenceSequence` follows every candidate mean of one run in plain Python; a simulation follows a few
candidates (the true mean, the gate band's edges) in thousands of runs at once. Both do the same arithmetic in the
same order, and tests/test_sequential_simulation.py checks that they exclude the same candidates at the same step.

Both capitals are monotone in the candidate (K+ falls and K- rises as the candidate grows, WSR23's argument for the
hedged process, which the without-replacement mean keeps since it grows with the candidate), so the sequence is
always an interval: it lies entirely below a candidate from the step that candidate is first excluded as too high.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gate.verdicts.sequential import ALPHA, HEDGE, PRIOR_MEAN, PRIOR_VARIANCE, TRUNCATION

Ints = npt.NDArray[np.int64]


def shuffled(counts: dict[int, int], runs: int, rng: np.random.Generator) -> Ints:
    """`runs` uniformly random orders of a population holding counts[value] values of each value (in units).

    Shape (runs, N)."""
    population = np.concatenate([np.full(count, value, dtype=np.int64) for value, count in sorted(counts.items())])
    return rng.permuted(np.tile(population, (runs, 1)), axis=1)


def exclusions(values: Ints, candidates: Ints, levels: int = 1, alpha: float = ALPHA) -> tuple[Ints, Ints]:
    """When each candidate population sum first leaves the sequence, per side.

    values: (runs, N), each run's values in units of 1 / levels in the order drawn; candidates: (runs, C) sums in
    the same units. Returns (too_low, too_high), each (runs, C): the number answered when the candidate was first
    found too low (the mean lies above it) or too high, N + 1 if never. A candidate is out from the earlier of the
    two; both at once leaves the sequence empty.
    """
    runs, total = values.shape
    never = total + 1
    steps = np.ascontiguousarray(values.T)  # (N, runs): one row per step
    sums_at = np.ascontiguousarray(candidates.T)  # (C, runs)
    too_low = np.full(sums_at.shape, never, dtype=np.int64)
    too_high = np.full(sums_at.shape, never, dtype=np.int64)
    log_up = np.full(sums_at.shape, math.log(HEDGE))
    log_down = np.full(sums_at.shape, math.log(1 - HEDGE))
    sums = np.zeros(runs, dtype=np.int64)
    variance_sum = np.full(runs, PRIOR_VARIANCE)
    threshold = math.log(1 / alpha)
    # A candidate's mean of the values left leaves [0, 1] only once it is impossible, and so already out: what its
    # capitals do afterwards is never read. At 0 or 1 the value drawn equals it, and the factor is log1p(0) = 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(1, total + 1):
            units = steps[t - 1]
            x = units / levels
            variance = variance_sum / t
            bet = np.sqrt(2 * math.log(2 / alpha) / (variance * t * math.log(1 + t)))
            remaining = total - t + 1
            after = sums + units
            mean = (sums_at - sums) / (levels * remaining)
            step = x - mean
            log_up += np.log1p(np.minimum(bet, TRUNCATION / mean) * step)
            log_down += np.log1p(-np.minimum(bet, TRUNCATION / (1 - mean)) * step)
            low = (sums_at < after) | (log_up >= threshold)
            high = (sums_at > after + levels * (remaining - 1)) | (log_down >= threshold)
            np.minimum(too_low, np.where(low, t, never), out=too_low)
            np.minimum(too_high, np.where(high, t, never), out=too_high)
            sums = after
            mean_hat = (PRIOR_MEAN + sums / levels) / (t + 1)
            variance_sum += (x - mean_hat) ** 2
    return np.ascontiguousarray(too_low.T), np.ascontiguousarray(too_high.T)


def stops(too_low: Ints, too_high: Ints, two_sided: bool, total: int) -> Ints:
    """When the sequence first lies entirely outside a band, from the exclusions of its edges; N + 1 if never.

    too_low, too_high: (runs, 2), column 0 the band's lowest passing sum, column 1 its highest. The sequence lies
    below the band once the lowest passing sum is out as too high (and was not out as too low before), above it
    once the highest is out as too low."""
    never = total + 1
    below = np.where(too_high[:, 0] < too_low[:, 0], too_high[:, 0], never)
    above = np.where(too_low[:, 1] < too_high[:, 1], too_low[:, 1], never) if two_sided else never
    return np.minimum(below, above)


def at_shards(steps: Ints, ends: list[int]) -> Ints:
    """The number answered at the first shard end at or after each step (a runner decides per shard; ends as
    sequential.shard_ends gives them, the last the total): total + 1 where a step is past it (never)."""
    bounds = np.asarray(ends)
    total = int(bounds[-1])
    return np.where(steps > total, total + 1, bounds[np.searchsorted(bounds, np.minimum(steps, total))])
