"""The alignment verdict: the card's fixed thresholds, or a multiple of the reference's own precision noise."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the server judges without loading numpy
    from gate.checks.alignment.metrics import Comparison

# gate's verdict vocabulary (the accuracy check's Outcome values); spelled here so this folder stays self-contained.
PASS, FAIL, NOT_COMPARABLE = "pass", "fail", "not_comparable"
NOISE_FLOOR = "noise floor"  # the reference against itself across precisions, named beside the comparisons


@dataclass(frozen=True)
class Thresholds:
    """Limits for one baseline; the defaults are the model card's same-precision figures."""

    ppl_rel_diff: float = 0.01  # the worst text's |ppl_c - ppl_r| / ppl_r (the card: <= 1 %)
    top1_match: float = 1.0  # share of positions whose most likely token agrees (the card: 100 %)
    cosine: float = 0.9999  # mean logit cosine over positions (the card: > 0.9999)
    # With a noise floor, each difference may be this multiple of the reference's own low-vs-high precision
    # difference: the candidate's rounding is a second source of noise of the same kind as the reference's, and two
    # such sources stay within about twice one; more than that is a difference the precision does not explain.
    noise_factor: float = 2.0
    # Absolute slack added to every floor-relative limit, so that a floor of zero (a deterministic reference) asks
    # for agreement within float32 rounding, not bit-exact equality.
    ppl_epsilon: float = 1e-4  # 0.01 % (the card's FP32 gap was 0.004 %)
    kl_epsilon: float = 1e-6  # nats per position
    cosine_epsilon: float = 1e-6

    @classmethod
    def from_mapping(cls, settings: Any) -> Thresholds:
        """Thresholds from a baseline's `checks.alignment` settings, or a one-sentence ValueError."""
        if settings is None:
            return cls()
        if not isinstance(settings, Mapping):
            raise ValueError("the alignment thresholds must be a mapping such as {cosine: 0.9999}.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            names = ", ".join(map(str, unknown))
            raise ValueError(f"unknown alignment threshold(s) {names}; known: {', '.join(known)}.")
        values: dict[str, float] = {}
        for name, value in settings.items():
            low, high = RANGES.get(name, (0.0, math.inf))
            number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not (number and low <= value <= high):
                what = f"a number from {low:g} to {high:g}" if math.isfinite(high) else "a finite, non-negative number"
                raise ValueError(f"the alignment threshold {name} must be {what}, got {value!r}.")
            values[name] = float(value)
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        """The thresholds as stored beside a verdict."""
        return asdict(self)


# The share and the cosine are bounded by 1; the others need only be finite and non-negative.
RANGES = {"top1_match": (0.0, 1.0), "cosine": (-1.0, 1.0)}


def precision_mismatch(name: str, candidate_dtype: str, reference_dtype: str) -> str:
    """The sentence for a cross-precision comparison that no noise floor can put in proportion."""
    return (
        f"{name}: candidate {candidate_dtype} and reference {reference_dtype} differ in precision and no noise floor "
        f"was measured; ask for both precisions to judge it."
    )


def _fixed(name: str, overall: Mapping[str, Any], t: Thresholds) -> list[str]:
    failures = []
    ppl = overall["ppl_rel_diff_max"]
    if ppl is not None and ppl > t.ppl_rel_diff:
        failures.append(
            f"{name}: a text's perplexity differs by {ppl:.3%}, more than the {t.ppl_rel_diff:.2%} allowed."
        )
    if overall["top1_match_rate"] < t.top1_match:
        failures.append(
            f"{name}: the most likely token agrees at {overall['top1_match_rate']:.1%} of positions, "
            f"below the {t.top1_match:.0%} required."
        )
    if overall["cosine_mean"] < t.cosine:
        failures.append(f"{name}: the mean logit cosine is {overall['cosine_mean']:.6f}, below {t.cosine}.")
    return failures


def _against_floor(name: str, overall: Mapping[str, Any], floor: Mapping[str, Any], t: Thresholds) -> list[str]:
    failures = []
    k = t.noise_factor
    if overall["ppl_rel_diff_max"] is not None and floor["ppl_rel_diff_max"] is not None:
        limit = k * floor["ppl_rel_diff_max"] + t.ppl_epsilon
        if overall["ppl_rel_diff_max"] > limit:
            failures.append(
                f"{name}: a text's perplexity differs by {overall['ppl_rel_diff_max']:.3%}, more than {limit:.3%} "
                f"({k:g} x the noise floor's {floor['ppl_rel_diff_max']:.3%})."
            )
    limit = k * floor["kl_mean"] + t.kl_epsilon
    if overall["kl_mean"] > limit:
        failures.append(
            f"{name}: the mean KL divergence is {overall['kl_mean']:.3g} nats, more than {limit:.3g} "
            f"({k:g} x the noise floor's {floor['kl_mean']:.3g})."
        )
    mismatch, floor_mismatch = 1 - overall["top1_match_rate"], 1 - floor["top1_match_rate"]
    if mismatch > k * floor_mismatch:
        failures.append(
            f"{name}: the most likely token differs at {mismatch:.1%} of positions, more than {k:g} x the noise "
            f"floor's {floor_mismatch:.1%}."
        )
    gap, floor_gap = 1 - overall["cosine_mean"], 1 - floor["cosine_mean"]
    if gap > k * floor_gap + t.cosine_epsilon:
        failures.append(
            f"{name}: the mean logit cosine is {overall['cosine_mean']:.6f}, further from 1 than {k:g} x the noise "
            f"floor's {floor['cosine_mean']:.6f}."
        )
    return failures


def judge(
    comparisons: Mapping[str, Comparison], floor: Comparison | None = None, thresholds: Thresholds | None = None
) -> tuple[str, list[str]]:
    """pass, fail or not_comparable for a probe's comparisons, and one sentence per finding."""
    t = thresholds or Thresholds()
    failures: list[str] = []
    incomparable: list[str] = []
    for name, comparison in comparisons.items():
        candidate_dtype, reference_dtype = comparison["candidate"]["dtype"], comparison["reference"]["dtype"]
        if floor is not None:
            failures += _against_floor(name, comparison["overall"], floor["overall"], t)
        elif candidate_dtype != reference_dtype:
            incomparable.append(precision_mismatch(name, candidate_dtype, reference_dtype))
        else:
            failures += _fixed(name, comparison["overall"], t)
    if failures:
        return FAIL, failures
    if incomparable:
        return NOT_COMPARABLE, incomparable
    basis = "the noise floor" if floor is not None else "the fixed thresholds"
    return PASS, [f"{len(comparisons)} comparison(s) within {basis}."]
