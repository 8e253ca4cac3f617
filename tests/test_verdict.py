"""The gate rule and its statistics: pure functions, no I/O."""

from __future__ import annotations

import math

import pytest

from gate.baselines.files import Reference
from gate.checks.accuracy.judge import Candidate, judge, pair
from gate.verdicts import stats
from gate.verdicts.outcome import Outcome, overall

GSM8K = Reference(
    benchmark="GSM8K", task="gsm8k", metric="exact_match,strict-match", num_fewshot=5, score=0.703, n_samples=1319
)
FULL = {"num_fewshot": 5, "limit": None, "n_original": 1319, "n_effective": 1319}


def candidate(value: float, **profile: object) -> Candidate:
    return Candidate(
        task="gsm8k",
        metric="exact_match,strict-match",
        value=value,
        stderr=0.0126,
        n_samples=1319,
        profile={**FULL, **profile},
    )


@pytest.mark.parametrize(
    ("score", "outcome"),
    [
        (0.683, Outcome.PASS),
        (0.6829, Outcome.FAIL),
        (0.723, Outcome.PASS),
        (0.7231, Outcome.FAIL),
        (0.703, Outcome.PASS),
    ],
)
def test_boundary_is_inclusive_and_exact(score: float, outcome: Outcome) -> None:
    assert judge(candidate(score), GSM8K).outcome is outcome


def test_delta_is_in_percentage_points() -> None:
    v = judge(candidate(0.683), GSM8K)
    assert v.delta_pp == -2.0
    assert v.candidate_stderr_pp == pytest.approx(1.26)
    lo, hi = v.delta_ci95_pp
    assert lo == pytest.approx(-2.0 - 1.96 * 1.26, abs=0.01) and hi == pytest.approx(-2.0 + 1.96 * 1.26, abs=0.01)


def test_one_sided_gate_ignores_improvements() -> None:
    lower = Reference(**{**GSM8K.__dict__, "two_sided": False})
    assert judge(candidate(0.80), lower).outcome is Outcome.PASS
    assert judge(candidate(0.80), GSM8K).outcome is Outcome.FAIL
    assert judge(candidate(0.6829), lower).outcome is Outcome.FAIL


def test_custom_tolerance() -> None:
    wide = Reference(**{**GSM8K.__dict__, "tolerance_pp": 5.0})
    assert judge(candidate(0.66), wide).outcome is Outcome.PASS


def test_limit_and_partial_runs_are_not_comparable() -> None:
    smoke = judge(candidate(0.703, limit=8.0, n_effective=8), GSM8K)
    assert smoke.outcome is Outcome.NOT_COMPARABLE
    assert any("limit=8:" in r for r in smoke.reasons)
    partial = judge(candidate(0.703, n_effective=1000), GSM8K)
    assert partial.outcome is Outcome.NOT_COMPARABLE


def test_fewshot_mismatch_is_not_comparable() -> None:
    v = judge(candidate(0.703, num_fewshot=0), GSM8K)
    assert v.outcome is Outcome.NOT_COMPARABLE
    assert v.reasons == ["num_fewshot differs: run has 0, baseline has 5"]


def test_published_baseline_says_protocol_is_uncontrolled() -> None:
    v = judge(candidate(0.70, apply_chat_template=True), GSM8K)
    assert v.outcome is Outcome.PASS  # compared on task, n-shot and metric only
    assert any("protocol offsets" in note for note in v.notes)


def test_recorded_protocol_must_match() -> None:
    protocol = {**FULL, "apply_chat_template": False, "generation_kwargs": {"until": ["Question:"]}}
    reference = Reference(**{**GSM8K.__dict__, "protocol": protocol})
    same = judge(candidate(0.70, apply_chat_template=False, generation_kwargs={"until": ["Question:"]}), reference)
    assert same.outcome is Outcome.PASS
    assert not any("protocol offsets" in note for note in same.notes)
    other = judge(candidate(0.70, apply_chat_template=True, generation_kwargs={"until": ["Question:"]}), reference)
    assert other.outcome is Outcome.NOT_COMPARABLE
    assert other.reasons == ["apply_chat_template differs: run has True, baseline has False"]


def test_sample_size_notes() -> None:
    gsm8k = judge(candidate(0.703), GSM8K)
    assert "1.26 pp" in gsm8k.notes[0] and "1.6 SE wide" in gsm8k.notes[0]
    assert gsm8k.min_detectable_drop_pp == pytest.approx(3.52, abs=0.01)
    assert not any("noisy" in n for n in gsm8k.notes)
    humaneval = Reference(
        benchmark="HumanEval", task="humaneval", metric="pass@1,create_test", num_fewshot=0, score=0.758, n_samples=164
    )
    v = judge(Candidate("humaneval", "pass@1,create_test", 0.758, None, 164, {"num_fewshot": 0}), humaneval)
    assert 0.45 < v.healthy_fail_rate < 0.6
    assert any("noisy" in n and "55%" in n for n in v.notes)


def test_mcnemar_exact() -> None:
    assert stats.mcnemar_exact_p(0, 0) == 1.0
    assert stats.mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)
    assert stats.mcnemar_exact_p(10, 0) == stats.mcnemar_exact_p(0, 10)
    assert stats.mcnemar_exact_p(5, 5) == 1.0
    # scipy.stats.binomtest(3, 15, 0.5).pvalue
    assert stats.mcnemar_exact_p(3, 12) == pytest.approx(0.03515625)


def test_pairing_counts_flips() -> None:
    reference = {"a": True, "b": True, "c": False, "d": False, "e": True}
    run = {"a": True, "b": False, "c": True, "d": False, "z": True}
    p = pair(run, reference)
    assert (p.n, p.regressions, p.improvements) == (4, 1, 1)
    assert p.p_value == 1.0
    assert pair({"x": True}, {"y": True}) is None


def test_overall() -> None:
    assert overall([]) is None
    assert overall([Outcome.PASS, Outcome.NOT_COMPARABLE]) is Outcome.NOT_COMPARABLE
    assert overall([Outcome.PASS, Outcome.FAIL, Outcome.NOT_COMPARABLE]) is Outcome.FAIL
    assert overall([Outcome.PASS]) is Outcome.PASS


def test_healthy_fail_rate_matches_normal_tails() -> None:
    assert stats.healthy_fail_rate(1.96, 1.0, two_sided=True) == pytest.approx(0.05, abs=1e-4)
    assert stats.healthy_fail_rate(1.645, 1.0, two_sided=False) == pytest.approx(0.05, abs=1e-3)
    assert math.isclose(stats.proportion_stderr(0.5, 101), 0.05)


def test_a_reference_with_every_document_right_is_judged_without_dividing_by_zero() -> None:
    perfect = Reference(
        benchmark="GSM8K", task="gsm8k", metric="exact_match,strict-match", num_fewshot=5, score=1.0, n_samples=30
    )
    verdict = judge(candidate(1.0), perfect)
    assert verdict.outcome is Outcome.PASS and verdict.min_detectable_drop_pp is None
    assert "the baseline scored 1: its standard error is 0, so the band has no size in SE" in verdict.notes


def test_the_weights_are_named_only_when_both_fingerprints_are_known() -> None:
    same, different, unknown = (judge(candidate(0.70), GSM8K, same_weights=s) for s in (True, False, None))
    assert [n[:18] for n in same.notes if "weights" in n] == ["identical weights:"]
    assert [n[:18] for n in different.notes if "weights" in n] == ["different weights:"]
    assert [n for n in unknown.notes if "weights" in n] == []
    assert (same.same_weights, different.same_weights, unknown.same_weights) == (True, False, None)
    assert same.outcome is different.outcome is unknown.outcome is Outcome.PASS  # a note, never a verdict
