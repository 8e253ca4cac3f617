"""Deciding early: may an accuracy run stop before its last question? (issue 15)

A run answers its N questions in a random order and asks after each shard. Two rules, both pure:

- certainty (no statistics): the gate can no longer be passed whatever the remaining answers are;
- an anytime-valid test (optional per baseline entry): a confidence sequence for the full test set's score, for
  sampling without replacement, lies outside the gate band. Its error rate is alpha whenever and however often it
  is looked at: Waudby-Smith & Ramdas, "Confidence sequences for sampling without replacement" (NeurIPS 2020,
  "WSR20"), with the bets of "Estimating means of bounded random variables by betting" (JRSS-B 2023, "WSR23").

The gate rule itself stays in the accuracy check's judge: a `Gate` carries it as `passes`, applied to each final
score k / N that the run could still reach. A run is never stopped on a pass.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

ALPHA = 0.05  # per baseline entry: the chance that a run whose true score passes is stopped anyway
HEDGE = 0.5  # theta of WSR23's hedged capital process: the weight on betting the mean is higher than m
TRUNCATION = 0.5  # c of WSR23's hedged bets (|bet| <= c / m): each factor stays >= 1 - c > 0
PRIOR_MEAN = 0.5  # WSR23's predictable plug-in starts from one fake observation of mean 1/2 ...
PRIOR_VARIANCE = 0.25  # ... and variance 1/4


@dataclass(frozen=True)
class Gate:
    """A baseline entry's band; `passes` is the accuracy judge's rule on a final score, e.g.
    `lambda s: judge.within_tolerance(judge.delta_pp(s, ref.score), ref.tolerance_pp, ref.two_sided)`."""

    baseline: float
    tolerance_pp: float
    two_sided: bool
    passes: Callable[[float], bool]

    @property
    def floor(self) -> str:
        """The lowest passing score as the gate states it (inclusive), e.g. 0.683."""
        return _plain(Decimal(repr(self.baseline)) - Decimal(repr(self.tolerance_pp)) / 100)

    @property
    def ceiling(self) -> str:
        return _plain(Decimal(repr(self.baseline)) + Decimal(repr(self.tolerance_pp)) / 100)

    def describe(self) -> str:
        return f"[{self.floor}, {self.ceiling}]" if self.two_sided else f"{self.floor} or more"


# A runner asks the rules after each shard. The first is small and each next one doubles up to SHARD_MOST: the rules
# may be asked as often as one likes, so a plainly broken port stops after a handful of answers (6 wrong ones settle
# it at alpha 0.05), while a healthy one soon answers in batches that keep an engine busy.
FIRST_SHARD = 8
SHARD_MOST = 40


def shard_ends(total: int, first: int = FIRST_SHARD, most: int = SHARD_MOST) -> list[int]:
    """How many questions are answered after each shard: first, then twice as many a shard up to most, to total."""
    if total < 1 or first < 1 or most < first:
        raise ValueError(f"need total >= 1 and 1 <= first <= most (got {total}, {first}, {most})")
    ends: list[int] = []
    step = first
    while not ends or ends[-1] < total:
        ends.append(min((ends[-1] if ends else 0) + step, total))
        step = min(step * 2, most)
    return ends


@functools.lru_cache(maxsize=64)
def passing(gate: Gate, total: int) -> tuple[int, int] | None:
    """The numbers right of `total` whose score right / total passes the gate, as (fewest, most); None if none do."""
    right = [k for k in range(total + 1) if gate.passes(k / total)]
    if not right:
        return None
    if right[-1] - right[0] + 1 != len(right):
        raise ValueError("the gate rule passes scores that are not contiguous")
    return right[0], right[-1]


@dataclass(frozen=True)
class Certainty:
    stop: bool  # the gate can no longer be passed
    certain_pass: bool  # it can no longer be failed: for the dashboard, never a reason to stop
    reachable: tuple[float, float]  # the lowest and highest final scores still possible
    reason: str


def certainty(gate: Gate, total: int, answered: int, right: int) -> Certainty:
    """What the answers so far settle, whatever the remaining total - answered answers are."""
    if not 0 <= right <= answered <= total or total < 1:
        raise ValueError(f"need 0 <= right ({right}) <= answered ({answered}) <= total ({total}), total >= 1")
    remaining = total - answered
    low, high = right, right + remaining
    reachable = (low / total, high / total)
    band = passing(gate, total)
    below = band is None or high < band[0]
    above = band is not None and gate.two_sided and low > band[1]
    settled = band is not None and band[0] <= low and high <= band[1]
    if band is None:
        reason = f"no score of {total} questions passes the gate's {gate.describe()}"
    elif remaining == 0:
        where = "below" if below else "above" if above else "within"
        edge = gate.floor if below else gate.ceiling if above else gate.describe()
        reason = f"all {total} questions are answered: the score is {_score(low / total)}, {where} the gate's {edge}"
    elif below:
        reason = (
            f"even if all {remaining} remaining questions are answered correctly, the score reaches at most "
            f"{_score(high / total)}, below the gate's {gate.floor}"
        )
    elif above:
        reason = (
            f"even if all {remaining} remaining questions are answered wrongly, the score is at least "
            f"{_score(low / total)}, above the gate's {gate.ceiling}"
        )
    elif settled:
        reason = (
            f"whatever the {remaining} remaining answers are, the score stays in [{_score(low / total)}, "
            f"{_score(high / total)}], within the gate's {gate.describe()}"
        )
    else:
        reason = (
            f"with {remaining} questions to go the score can still end anywhere in [{_score(low / total)}, "
            f"{_score(high / total)}], which meets the gate's {gate.describe()}"
        )
    return Certainty(stop=below or above, certain_pass=settled, reachable=reachable, reason=reason)


class ConfidenceSequence:
    """WSR20's betting confidence sequence for the mean of `total` values in [0, 1] drawn without replacement.

    The candidates are every mean the population can have: its sum is a multiple of 1 / levels (levels = 1 for
    right/wrong answers, 2 for paired differences rescaled to {0, 1/2, 1}), so the grid is exact, not a
    discretisation. Each candidate keeps its own hedged capital; it leaves the sequence for good once that capital
    reaches 1 / alpha (Ville's inequality bounds the chance that the true mean ever does by alpha), or once the
    values seen make it impossible. Values must be fed in the order they were drawn, never in the order they came
    back: a completion order that depends on the answers would break the martingale.
    """

    def __init__(self, total: int, alpha: float = ALPHA, levels: int = 1) -> None:
        if total < 1 or not 0 < alpha < 1 or levels < 1:
            raise ValueError(f"need total >= 1, 0 < alpha < 1 and levels >= 1 (got {total}, {alpha}, {levels})")
        self.total, self.alpha, self.levels = total, alpha, levels
        self.answered = 0
        self._sum = 0  # of the values seen, in units of 1 / levels
        self._variance_sum = PRIOR_VARIANCE  # WSR23's 1/4 + sum_i (x_i - mean_i)^2
        self._threshold = math.log(1 / alpha)
        # per surviving candidate: its population sum (units of 1 / levels) and the log of both capitals
        self._candidates = list(range(total * levels + 1))
        self._up = [math.log(HEDGE)] * len(self._candidates)  # theta * K+, bets the mean is above the candidate
        self._down = [math.log(1 - HEDGE)] * len(self._candidates)  # (1 - theta) * K-, bets it is below

    def observe(self, value: float) -> None:
        units = round(value * self.levels)
        if not 0 <= units <= self.levels or abs(units - value * self.levels) > 1e-9:
            raise ValueError(f"a value must be a multiple of 1/{self.levels} in [0, 1], not {value}")
        if self.answered == self.total:
            raise ValueError(f"all {self.total} values are already observed")
        t = self.answered + 1
        x = units / self.levels
        # WSR23's predictable plug-in bet, from values before this one (hedged: one size, truncated per side)
        variance = self._variance_sum / t
        bet = math.sqrt(2 * math.log(2 / self.alpha) / (variance * t * math.log(1 + t)))
        remaining = self.total - t + 1  # values not yet seen, this one included
        after = self._sum + units
        candidates, up, down = [], [], []
        for candidate, log_up, log_down in zip(self._candidates, self._up, self._down, strict=True):
            # logically impossible now: the values seen already exceed it, or the rest cannot reach it
            if candidate < after or candidate > after + self.levels * (remaining - 1):
                continue
            # WSR20's without-replacement correction: the mean of the values not yet seen, were the candidate true
            mean = (candidate - self._sum) / (self.levels * remaining)
            if 0 < mean < 1:  # at 0 or 1 the next value is forced, and equal to it: the factor is 1
                log_up += math.log1p(min(bet, TRUNCATION / mean) * (x - mean))
                log_down += math.log1p(-min(bet, TRUNCATION / (1 - mean)) * (x - mean))
            if max(log_up, log_down) >= self._threshold:  # the hedged capital max(theta K+, (1-theta) K-)
                continue
            candidates.append(candidate)
            up.append(log_up)
            down.append(log_down)
        self._candidates, self._up, self._down = candidates, up, down
        self._sum = after
        self.answered = t
        mean_hat = (PRIOR_MEAN + self._sum / self.levels) / (t + 1)
        self._variance_sum += (x - mean_hat) ** 2

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.observe(value)

    def sums(self) -> tuple[int, int] | None:
        """The smallest and largest population sum (units of 1 / levels) still in the sequence; None if empty."""
        return (self._candidates[0], self._candidates[-1]) if self._candidates else None

    def interval(self) -> tuple[float, float] | None:
        """The sequence for the population mean; None once every mean is excluded (an event of chance < alpha)."""
        sums = self.sums()
        if sums is None:
            return None
        scale = self.total * self.levels
        return sums[0] / scale, sums[1] / scale


def score_sequence(total: int, alpha: float = ALPHA) -> ConfidenceSequence:
    """For a run's own answers: observe 1.0 for a right answer, 0.0 for a wrong one, in the order drawn."""
    return ConfidenceSequence(total, alpha)


def paired_sequence(total: int, alpha: float = ALPHA) -> ConfidenceSequence:
    """For a run against a promoted reference run on the same documents: observe `paired_value` per question."""
    return ConfidenceSequence(total, alpha, levels=2)


def paired_value(candidate: bool, reference: bool) -> float:
    """d = candidate - reference in {-1, 0, 1}, rescaled to (d + 1) / 2 in {0, 1/2, 1}."""
    return (int(candidate) - int(reference) + 1) / 2


@dataclass(frozen=True)
class Decision:
    stop: bool
    interval: tuple[float, float] | None  # the confidence sequence for the final (full test set) score
    alpha: float
    reason: str


def decide(gate: Gate, sequence: ConfidenceSequence, reference_right: int | None = None) -> Decision:
    """Stop when the whole confidence sequence for the final score lies outside the gate band.

    reference_right: for a paired sequence, how many of the same `total` documents the reference run got right;
    the final score is then (reference_right + sum of differences) / total."""
    total = sequence.total
    if (sequence.levels == 2) != (reference_right is not None):
        raise ValueError("a paired sequence needs reference_right, and only a paired one takes it")
    sums = sequence.sums()
    confidence = f"{(1 - sequence.alpha) * 100:g} % confidence sequence"
    if reference_right is not None:
        confidence += " on the differences from the reference run"
    progress = f"{sequence.answered} of {total}"
    # final numbers right: the population sum itself, or the reference's plus the sum of differences (d = 2x - 1)
    if sums is not None and reference_right is not None:
        sums = (reference_right + sums[0] - total, reference_right + sums[1] - total)
    if sums is None or sums[0] > total or sums[1] < 0:  # the true score was excluded: decide nothing
        return Decision(False, None, sequence.alpha, f"after {progress} the {confidence} excludes every score")
    low, high = max(sums[0], 0), min(sums[1], total)
    interval = (low / total, high / total)
    shown = f"[{_score(interval[0])}, {_score(interval[1])}]"
    band = passing(gate, total)
    below = band is None or high < band[0]
    above = band is not None and gate.two_sided and low > band[1]
    if below or above:
        edge = f"below the gate's {gate.floor}" if below else f"above the gate's {gate.ceiling}"
        reason = f"stopped at {progress}: the {confidence} puts the score in {shown}, entirely {edge}"
    else:
        reason = (
            f"after {progress} the {confidence} puts the score in {shown}, which meets the gate's {gate.describe()}"
        )
    return Decision(below or above, interval, sequence.alpha, reason)


def _score(value: float) -> str:
    return f"{value:.4f}"


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
