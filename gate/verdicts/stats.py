"""The statistics behind a verdict: standard errors, intervals, McNemar's exact test, power."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile
Z_80_POWER = 0.8416212335729143  # one-sided quantile for 80 % power


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def proportion_stderr(p: float, n: int) -> float:
    """Standard error of a mean of n Bernoulli outcomes, as lm-eval reports it (sample std / sqrt(n))."""
    if n < 2:
        return float("nan")
    return math.sqrt(p * (1.0 - p) / (n - 1))


def delta_interval(delta: float, se_candidate: float, se_baseline: float) -> tuple[float, float]:
    """95 % interval of an unpaired difference of two independent estimates."""
    half = Z_95 * math.sqrt(se_candidate**2 + se_baseline**2)
    return delta - half, delta + half


def paired_delta_stderr(regressions: int, improvements: int, n: int) -> float:
    """Standard error of the mean paired difference of binary outcomes (each d_i in {-1, 0, 1})."""
    if n < 2:
        return float("nan")
    mean = (improvements - regressions) / n
    second_moment = (improvements + regressions) / n
    return math.sqrt(max(second_moment - mean**2, 0.0) * n / (n - 1) / n)


def mcnemar_exact_p(regressions: int, improvements: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs at p = 1/2."""
    discordant = regressions + improvements
    if discordant == 0:
        return 1.0
    k = min(regressions, improvements)
    tail = sum(math.comb(discordant, i) for i in range(k + 1)) / 2**discordant
    return min(1.0, 2.0 * tail)


def minimum_detectable_drop(p: float, n: int) -> float:
    """Smallest true drop (as a fraction) a run of n questions detects at 5 % two-sided, 80 % power."""
    return (Z_95 + Z_80_POWER) * math.sqrt(p * (1.0 - p) / n)


def healthy_fail_rate(tolerance: float, se: float, two_sided: bool) -> float:
    """Chance that a run whose true score equals the baseline still falls outside the tolerance."""
    if se <= 0 or math.isnan(se):
        return 0.0
    one_tail = 1.0 - normal_cdf(tolerance / se)
    return 2.0 * one_tail if two_sided else one_tail
