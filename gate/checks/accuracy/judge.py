"""judge(candidate, baseline) -> Verdict: the gate rule, in one place.

delta = candidate - baseline, in percentage points, computed in decimal arithmetic so that the
boundary is exact (0.683 against 0.703 is -2.0 pp and passes a +/-2 pp gate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gate.baselines.files import Reference
from gate.checks.accuracy.profile import protocol_differences, protocol_of
from gate.verdicts import stats
from gate.verdicts.outcome import Outcome, weights_note

# A gate whose healthy runs fail this often is noise, not a check.
NOISY_GATE_FAIL_RATE = 0.2


@dataclass(frozen=True)
class Candidate:
    """A run's score on one task, with the profile it was produced under."""

    task: str
    metric: str
    value: float
    stderr: float | None
    n_samples: int | None
    profile: Mapping[str, Any]  # an EvalProfile, or one stored before its newer keys existed


@dataclass(frozen=True)
class Paired:
    """Paired comparison on the documents both runs answered."""

    n: int
    regressions: int  # right in the baseline, wrong in the candidate
    improvements: int  # wrong in the baseline, right in the candidate
    p_value: float
    delta_ci95_pp: tuple[float, float]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    task: str
    metric: str
    candidate: float
    baseline: float
    delta_pp: float
    tolerance_pp: float
    two_sided: bool
    candidate_stderr_pp: float | None
    delta_ci95_pp: tuple[float, float] | None
    min_detectable_drop_pp: float | None
    healthy_fail_rate: float | None
    paired: Paired | None = None
    reasons: list[str] = field(default_factory=list)  # why "not comparable", or why a stopped run failed
    notes: list[str] = field(default_factory=list)
    same_weights: bool | None = None  # equal model fingerprints with the reference run; None: unknown


def delta_pp(candidate: float, baseline: float) -> Decimal:
    """Exact difference in percentage points of two scores given as floats."""
    return (Decimal(repr(candidate)) - Decimal(repr(baseline))) * 100


def within_tolerance(delta: Decimal, tolerance_pp: float, two_sided: bool) -> bool:
    tolerance = Decimal(repr(tolerance_pp))
    return abs(delta) <= tolerance if two_sided else delta >= -tolerance


def comparability_problems(candidate: Candidate, reference: Reference) -> list[str]:
    problems = []
    if candidate.task != reference.task:
        problems.append(f"task differs: run has {candidate.task!r}, baseline has {reference.task!r}")
    if candidate.metric != reference.metric:
        problems.append(f"metric differs: run has {candidate.metric!r}, baseline has {reference.metric!r}")
    shots = candidate.profile.get("num_fewshot")
    if reference.num_fewshot is not None and shots is None:
        why = candidate.profile.get("num_fewshot_from") or "the file has no n-shot entry"
        problems.append(f"the run's num_fewshot is unknown ({why}); the baseline has {reference.num_fewshot!r}")
    elif reference.num_fewshot is not None and shots != reference.num_fewshot:
        problems.append(f"num_fewshot differs: run has {shots!r}, baseline has {reference.num_fewshot!r}")
    limit = candidate.profile.get("limit")
    if limit is not None:
        problems.append(f"the run used limit={limit:g}: a smoke run on part of the test set")
    original, effective = candidate.profile.get("n_original"), candidate.profile.get("n_effective")
    stopped = candidate.profile.get("stopped") is not None  # fewer documents by design: a fail, decided early
    if limit is None and not stopped and original is not None and effective is not None and effective < original:
        problems.append(f"the run scored {effective} of {original} documents")
    if reference.protocol is not None:
        candidate_protocol = protocol_of(candidate.profile)
        reference_protocol = protocol_of(reference.protocol)
        problems += [
            p
            for p in protocol_differences(candidate_protocol, reference_protocol)
            if not p.startswith("num_fewshot")  # already reported above
        ]
    return problems


def judge(
    candidate: Candidate, reference: Reference, paired: Paired | None = None, same_weights: bool | None = None
) -> Verdict:
    """same_weights: whether the run and the reference run evaluated identical model files (None: unknown)."""
    delta = delta_pp(candidate.value, reference.score)
    n = candidate.n_samples or reference.n_samples
    se = candidate.stderr
    if se is None and candidate.n_samples:
        se = stats.proportion_stderr(candidate.value, candidate.n_samples)
    se_pp = None if se is None or math.isnan(se) else se * 100
    interval = None
    if se_pp is not None:
        lo, hi = stats.delta_interval(float(delta), se_pp, (reference.stderr or 0.0) * 100)
        interval = (lo, hi)

    mdd_pp = fail_rate = None
    notes = []
    healthy_se_pp = math.sqrt(reference.score * (1 - reference.score) / n) * 100 if n else 0.0
    if n and healthy_se_pp == 0.0:  # a reference that got every document right (or wrong) has no spread to size by
        notes.append(f"the baseline scored {reference.score:g}: its standard error is 0, so the band has no size in SE")
    elif n:
        mdd_pp = stats.minimum_detectable_drop(reference.score, n) * 100
        fail_rate = stats.healthy_fail_rate(reference.tolerance_pp, healthy_se_pp, reference.two_sided)
        notes.append(
            f"with n={n} the standard error is about {healthy_se_pp:.2f} pp, so the "
            f"{'±' if reference.two_sided else '-'}{reference.tolerance_pp:g} pp band is "
            f"{reference.tolerance_pp / healthy_se_pp:.1f} SE wide; the smallest drop this sample "
            f"detects (5 % level, 80 % power) is {mdd_pp:.1f} pp"
        )
        if fail_rate > NOISY_GATE_FAIL_RATE:
            notes.append(
                f"this gate is noisy: a healthy run (true score equal to the baseline) fails it "
                f"about {fail_rate:.0%} of the time"
            )
    if reference.protocol is None:
        notes.append(
            "the baseline is a published figure with no recorded protocol: compared on task, n-shot "
            "and metric only; protocol offsets (prompt, chat template, generation settings) are not controlled"
        )
    if reference.stderr is None and reference.protocol is None:
        notes.append("the interval counts the run's uncertainty only: the published figure gives none")
    if (note := weights_note(same_weights)) is not None:
        notes.append(note)

    problems = comparability_problems(candidate, reference)
    stopped = candidate.profile.get("stopped")
    if problems:
        outcome = Outcome.NOT_COMPARABLE
    elif stopped is not None:
        outcome = Outcome.FAIL
        problems = [stopped_reason(stopped)]
    elif within_tolerance(delta, reference.tolerance_pp, reference.two_sided):
        outcome = Outcome.PASS
    else:
        outcome = Outcome.FAIL
    return Verdict(
        outcome=outcome,
        task=candidate.task,
        metric=candidate.metric,
        candidate=candidate.value,
        baseline=reference.score,
        delta_pp=float(delta),
        tolerance_pp=reference.tolerance_pp,
        two_sided=reference.two_sided,
        candidate_stderr_pp=se_pp,
        delta_ci95_pp=interval,
        min_detectable_drop_pp=mdd_pp,
        healthy_fail_rate=fail_rate,
        paired=paired,
        reasons=problems,
        notes=notes,
        same_weights=same_weights,
    )


def stopped_reason(stopped: Mapping[str, Any]) -> str:
    """Why a stopped run failed, e.g. "fail (stopped at 440 of 1319, certainty): even if all 879 ..."."""
    low, high = stopped["bound"]
    return (
        f"fail (stopped at {stopped['at']} of {stopped['of']}, {stopped['rule'].replace('_', ' ')}; "
        f"final score bound [{low:.4f}, {high:.4f}]): {stopped['reason']}"
    )


def pair(candidate: dict[str, bool], reference: dict[str, bool]) -> Paired | None:
    """Paired comparison of per-document outcomes keyed by document hash; None when no document is shared."""
    shared = candidate.keys() & reference.keys()
    if not shared:
        return None
    regressions = sum(1 for doc in shared if reference[doc] and not candidate[doc])
    improvements = sum(1 for doc in shared if candidate[doc] and not reference[doc])
    n = len(shared)
    mean_pp = (improvements - regressions) / n * 100
    se_pp = stats.paired_delta_stderr(regressions, improvements, n) * 100
    half = 0.0 if math.isnan(se_pp) else stats.Z_95 * se_pp
    return Paired(
        n=n,
        regressions=regressions,
        improvements=improvements,
        p_value=stats.mcnemar_exact_p(regressions, improvements),
        delta_ci95_pp=(mean_pp - half, mean_pp + half),
    )
