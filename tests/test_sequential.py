"""The decide-early rules on exact cases: the certainty rule against judge's own rule, and the confidence sequence's
interface and sentences. Their error rates are proven by simulation in test_sequential_simulation.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.checks.accuracy import judge
from gate.verdicts import sequential

N = 1319  # GSM8K's test set


def gate(baseline: float = 0.703, tolerance_pp: float = 2.0, two_sided: bool = True) -> sequential.Gate:
    return sequential.Gate(
        baseline,
        tolerance_pp,
        two_sided,
        lambda score: judge.within_tolerance(judge.delta_pp(score, baseline), tolerance_pp, two_sided),
    )


def test_the_band_is_the_numbers_right_that_judge_passes() -> None:
    assert sequential.passing(gate(), N) == (901, 953)  # 901/1319 = 0.68309, 900/1319 = 0.68234
    assert sequential.passing(gate(two_sided=False), N) == (901, N)
    assert sequential.passing(gate(), 1000) == (683, 723)  # both edges inclusive, exactly
    assert sequential.passing(gate(0.5, 0.01), 7) is None  # no k / 7 lies within 0.01 pp of 0.5


def test_one_more_right_answer_would_keep_the_gate_passable() -> None:
    # 900 reachable: stop; 901 reachable: go on
    stopped = sequential.certainty(gate(), N, answered=N - 412, right=900 - 412)
    assert stopped.stop and not stopped.certain_pass
    assert stopped.reachable == ((900 - 412) / N, 900 / N)
    assert stopped.reason == (
        "even if all 412 remaining questions are answered correctly, the score reaches at most 0.6823, "
        "below the gate's 0.683"
    )
    going = sequential.certainty(gate(), N, answered=N - 412, right=901 - 412)
    assert not going.stop and not going.certain_pass
    assert going.reason == (
        "with 412 questions to go the score can still end anywhere in [0.3707, 0.6831], which meets the gate's "
        "[0.683, 0.723]"
    )


def test_the_boundary_is_inclusive() -> None:
    # 683 of 1000 is exactly 0.683, which passes a 0.703 +/- 2 pp gate; 682 does not
    assert not sequential.certainty(gate(), 1000, answered=900, right=583).stop
    assert sequential.certainty(gate(), 1000, answered=900, right=582).stop
    done = sequential.certainty(gate(), 1000, answered=1000, right=683)
    assert not done.stop and done.certain_pass
    assert done.reason == "all 1000 questions are answered: the score is 0.6830, within the gate's [0.683, 0.723]"


def test_a_two_sided_gate_stops_a_run_too_good_to_pass_and_a_lower_one_never_does() -> None:
    above = sequential.certainty(gate(), N, answered=1000, right=954)
    assert above.stop
    assert above.reason == (
        "even if all 319 remaining questions are answered wrongly, the score is at least 0.7233, above the gate's 0.723"
    )
    assert not sequential.certainty(gate(), N, answered=1000, right=953).stop
    lower = sequential.certainty(gate(two_sided=False), N, answered=N, right=N)
    assert not lower.stop and lower.certain_pass


def test_a_lower_gate_stops_a_run_that_cannot_reach_the_floor() -> None:
    assert sequential.certainty(gate(two_sided=False), N, answered=419, right=0).stop
    assert not sequential.certainty(gate(two_sided=False), N, answered=418, right=0).stop


def test_nothing_right_early_is_no_reason_to_stop() -> None:
    assert not sequential.certainty(gate(), N, answered=0, right=0).stop
    assert not sequential.certainty(gate(), N, answered=100, right=0).stop
    assert not sequential.certainty(gate(), N, answered=418, right=0).stop  # 901 left: all right still passes
    assert sequential.certainty(gate(), N, answered=419, right=0).stop


def test_a_certain_pass_is_reported_not_stopped() -> None:
    settled = sequential.certainty(gate(), N, answered=1300, right=920)
    assert settled.certain_pass and not settled.stop
    assert settled.reason == (
        "whatever the 19 remaining answers are, the score stays in [0.6975, 0.7119], within the gate's [0.683, 0.723]"
    )


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        sequential.certainty(gate(), N, answered=10, right=11)
    with pytest.raises(ValueError):
        sequential.certainty(gate(), N, answered=N + 1, right=0)


@settings(max_examples=400, deadline=None)
@given(
    total=st.integers(1, 80),
    baseline=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.683, 0.703, 0.8125, 0.99, 1.0]),
    tolerance_pp=st.sampled_from([0.0, 0.5, 1.25, 2.0, 5.0, 20.0]),
    two_sided=st.booleans(),
    data=st.data(),
)
def test_stop_exactly_when_no_completion_passes_judge(
    total: int, baseline: float, tolerance_pp: float, two_sided: bool, data: st.DataObject
) -> None:
    answered = data.draw(st.integers(0, total))
    right = data.draw(st.integers(0, answered))
    verdict = sequential.certainty(gate(baseline, tolerance_pp, two_sided), total, answered, right)
    finals = range(right, right + total - answered + 1)
    outcomes = [
        judge.within_tolerance(judge.delta_pp(final / total, baseline), tolerance_pp, two_sided) for final in finals
    ]
    assert verdict.stop == (not any(outcomes))
    assert verdict.certain_pass == all(outcomes)


def test_paired_values_are_the_differences_rescaled() -> None:
    assert sequential.paired_value(True, True) == 0.5
    assert sequential.paired_value(False, False) == 0.5
    assert sequential.paired_value(True, False) == 1.0
    assert sequential.paired_value(False, True) == 0.0


def test_the_sequence_refuses_values_off_its_grid() -> None:
    scores = sequential.score_sequence(3)
    with pytest.raises(ValueError):
        scores.observe(0.5)
    scores.extend([1.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        scores.observe(1.0)
    with pytest.raises(ValueError):
        sequential.decide(gate(), scores, reference_right=2)
    with pytest.raises(ValueError):
        sequential.decide(gate(), sequential.paired_sequence(3))


def test_a_full_run_leaves_exactly_its_score() -> None:
    scores = sequential.score_sequence(10)
    scores.extend([1.0] * 7 + [0.0] * 3)
    assert scores.interval() == (0.7, 0.7)
    decision = sequential.decide(gate(), scores)
    assert not decision.stop
    assert decision.reason == (
        "after 10 of 10 the 95 % confidence sequence puts the score in [0.7000, 0.7000], which meets the gate's "
        "[0.683, 0.723]"
    )


def test_a_broken_port_is_stopped_with_its_bound() -> None:
    scores = sequential.score_sequence(N)
    scores.extend([0.0] * 20)
    decision = sequential.decide(gate(), scores)
    assert decision.stop and decision.alpha == 0.05
    assert decision.interval is not None and decision.interval[0] == 0.0 and decision.interval[1] < 0.683
    assert decision.reason == (
        f"stopped at 20 of 1319: the 95 % confidence sequence puts the score in [0.0000, "
        f"{decision.interval[1]:.4f}], entirely below the gate's 0.683"
    )


def test_the_paired_sequence_reads_as_the_final_score() -> None:
    # the reference got 927 of 1319 right; the candidate gets every one of them wrong
    differences = sequential.paired_sequence(N)
    differences.extend([sequential.paired_value(False, True)] * 20)
    decision = sequential.decide(gate(), differences, reference_right=927)
    assert decision.stop
    assert decision.interval is not None and decision.interval[1] < 0.683
    assert decision.reason.startswith(
        "stopped at 20 of 1319: the 95 % confidence sequence on the differences from the reference run puts the "
        "score in ["
    )
    agreeing = sequential.paired_sequence(N)
    agreeing.extend([0.5] * 200)  # the candidate answers exactly as the reference did
    kept = sequential.decide(gate(), agreeing, reference_right=927)
    assert not kept.stop and kept.interval is not None
    assert kept.interval[0] < 927 / N < kept.interval[1]


def test_shards_start_small_and_double_up_to_the_most() -> None:
    assert sequential.shard_ends(1319)[:6] == [8, 24, 56, 96, 136, 176]
    assert sequential.shard_ends(1319)[-2:] == [1296, 1319] and len(sequential.shard_ends(1319)) == 35
    assert sequential.shard_ends(5) == [5] and sequential.shard_ends(9) == [8, 9]
    assert sequential.shard_ends(100, first=40, most=40) == [40, 80, 100]
    with pytest.raises(ValueError, match="need total >= 1"):
        sequential.shard_ends(0)
