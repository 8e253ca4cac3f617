"""The serving verdict: each concurrency level's throughput and TPOT against a reference run's, rounds' spread
considered (pure).

The rule, per level shared with the reference:
- output throughput passes when the candidate's mean over its rounds is >= throughput_ratio x the reference's mean,
  and mean TPOT when the candidate's mean is <= tpot_ratio x the reference's mean;
- a level outside a ratio fails only when the drop exceeds both sides' spread: the candidate's best round is still
  outside the ratio applied to the reference's worst round (throughput: max(candidate) < ratio x min(reference);
  TPOT: min(candidate) > ratio x max(reference)). Overlapping rounds are noise, reported but not failed. With one
  round per side the spread is zero and the rule is the plain ratio, as vLLM-Ascend's CI applies it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

PASS, FAIL, NOT_COMPARABLE = "pass", "fail", "not_comparable"  # gate's verdict words; None: measured, not gated
WITHIN_SPREAD = "within the rounds' spread: not a fail."  # ends the sentence of a figure outside its ratio, not failed
NOT_GATED = "measured, not gated: no reference run (name one in the spec or the baseline's checks.serving)."


@dataclass(frozen=True)
class Thresholds:
    """A baseline's `checks.serving`: the reference run and the ratios (vLLM-Ascend CI's 0.97 x baseline)."""

    throughput_ratio: float = 0.97  # candidate output throughput >= this x the reference's
    tpot_ratio: float = 1.03  # candidate mean TPOT <= this x the reference's
    reference_run: int | None = None  # a succeeded serving run's id

    @classmethod
    def from_mapping(cls, settings: Any) -> Thresholds:
        """Thresholds from a baseline's `checks.serving` settings, or a one-sentence ValueError."""
        if settings is None:
            return cls()
        if not isinstance(settings, Mapping):
            raise ValueError("the serving settings must be a mapping such as {reference_run: 12}.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(map(str, set(settings) - set(known)))
        if unknown:
            raise ValueError(f"unknown serving setting(s) {', '.join(unknown)}; known: {', '.join(known)}.")
        values: dict[str, Any] = {}
        for name, value in settings.items():
            if name == "reference_run":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"the serving setting reference_run must be a run id, got {value!r}.")
                values[name] = value
                continue
            number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if not (number and value > 0):
                raise ValueError(f"the serving setting {name} must be a positive number, got {value!r}.")
            values[name] = float(value)
        return cls(**values)

    def ratios(self) -> dict[str, float]:
        """The ratios as stored beside a verdict."""
        return {"throughput_ratio": self.throughput_ratio, "tpot_ratio": self.tpot_ratio}


def differences(candidate: Mapping[str, Any], reference: Mapping[str, Any]) -> list[str]:
    """What makes two reports' figures incomparable: device kind, engine arguments, vLLM version, profile."""
    found = []
    for key, what in (("device_kind", "device kind"), ("vllm_version", "vLLM version")):
        if candidate[key] != reference[key]:
            here, there = (value or "unknown" for value in (candidate[key], reference[key]))
            found.append(f"the {what} differs ({here} here, {there} in the reference)")
    if candidate["engine_args"] != reference["engine_args"]:
        keys = sorted(set(candidate["engine_args"]) | set(reference["engine_args"]))
        changed = [k for k in keys if candidate["engine_args"].get(k) != reference["engine_args"].get(k)]
        shown = ", ".join(
            f"{k}: {candidate['engine_args'].get(k)!r} vs {reference['engine_args'].get(k)!r}" for k in changed
        )
        found.append(f"the engine arguments differ ({shown})")
    profile, theirs = candidate["spec"]["profile"], reference["spec"]["profile"]
    if profile != theirs:
        found.append(f"the profile differs ({profile} here, {theirs} in the reference)")
    return found


def _span(values: list[float], unit: str) -> str:
    return f"{min(values):.4g}..{max(values):.4g} {unit}" if len(values) > 1 else f"{values[0]:.4g} {unit}"


def _level(
    concurrency: int, mine: list[dict[str, Any]], theirs: list[dict[str, Any]], t: Thresholds
) -> list[tuple[bool, str]]:
    """(fails, sentence) for each figure of one level outside its ratio: a fail, or noise within the spread."""
    said = []
    ours, ref = [r["output_throughput"] for r in mine], [r["output_throughput"] for r in theirs]
    mean, ref_mean = statistics.fmean(ours), statistics.fmean(ref)
    if mean < t.throughput_ratio * ref_mean:
        beyond = max(ours) < t.throughput_ratio * min(ref)
        said.append(
            (
                beyond,
                f"c={concurrency}: output throughput {mean:.4g} tok/s is {mean / ref_mean:.1%} of the reference's "
                f"{ref_mean:.4g} tok/s, below {t.throughput_ratio:.0%}; rounds {_span(ours, 'tok/s')} against "
                f"{_span(ref, 'tok/s')}" + ("." if beyond else f", {WITHIN_SPREAD}"),
            )
        )
    ours, ref = [r["mean_tpot_ms"] for r in mine], [r["mean_tpot_ms"] for r in theirs]
    mean, ref_mean = statistics.fmean(ours), statistics.fmean(ref)
    if mean > t.tpot_ratio * ref_mean:
        beyond = min(ours) > t.tpot_ratio * max(ref)
        said.append(
            (
                beyond,
                f"c={concurrency}: mean TPOT {mean:.4g} ms is {mean / ref_mean:.1%} of the reference's {ref_mean:.4g} "
                f"ms, above {t.tpot_ratio:.0%}; rounds {_span(ours, 'ms')} against {_span(ref, 'ms')}"
                + ("." if beyond else f", {WITHIN_SPREAD}"),
            )
        )
    return said


def judge(
    candidate: Mapping[str, Any], reference: Mapping[str, Any] | None, reference_run: int | None, t: Thresholds
) -> tuple[str | None, list[str]]:
    """pass, fail, not_comparable, or None (no reference: measured, not gated), and one sentence per finding."""
    if reference is None:
        return None, [NOT_GATED]
    differ = differences(candidate, reference)
    if differ:
        return NOT_COMPARABLE, [f"not comparable with reference run {reference_run}: {'; '.join(differ)}."]
    theirs = {level["concurrency"]: level["rounds"] for level in reference["levels"]}
    shared = [level for level in candidate["levels"] if level["concurrency"] in theirs]
    if not shared:
        return NOT_COMPARABLE, [f"reference run {reference_run} measured none of this run's concurrency levels."]
    findings = [
        found
        for level in shared
        for found in _level(level["concurrency"], level["rounds"], theirs[level["concurrency"]], t)
    ]
    failures = [sentence for fails, sentence in findings if fails]
    noise = [sentence for fails, sentence in findings if not fails]
    untested = [level["concurrency"] for level in candidate["levels"] if level["concurrency"] not in theirs]
    notes = (
        [f"concurrency {', '.join(map(str, untested))} not gated: the reference did not measure it."]
        if untested
        else []
    )
    if failures:
        return FAIL, failures + noise + notes
    summary = (
        f"{len(shared)} level(s) within {t.throughput_ratio:.0%} of reference run {reference_run}'s output "
        f"throughput and {t.tpot_ratio:.0%} of its mean TPOT, or within the rounds' spread."
    )
    return PASS, [summary, *noise, *notes]
