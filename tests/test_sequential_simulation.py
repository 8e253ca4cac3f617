"""The confidence sequence's guarantees, by simulation over random orders of finite populations of N = 1319.

The simulations use the vectorised twin (gate.verdicts.sequential_sim), which the first tests hold to the plain
implementation step by step. Seeds are fixed: the figures are the same on every run.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from gate.checks.accuracy import judge
from gate.verdicts import sequential
from gate.verdicts import sequential_sim as sim

N = 1319
ENDS = sequential.shard_ends(N)  # the runner decides after each shard: 8, 24, 56, 96, 136, ...
ALPHA = 0.05
RUNS = 10_000  # the figure


def gate(baseline: float = 0.703, tolerance_pp: float = 2.0, two_sided: bool = True) -> sequential.Gate:
    return sequential.Gate(
        baseline,
        tolerance_pp,
        two_sided,
        lambda score: judge.within_tolerance(judge.delta_pp(score, baseline), tolerance_pp, two_sided),
    )


@pytest.mark.parametrize("levels", [1, 2])
def test_the_twin_excludes_what_the_plain_sequence_excludes_at_the_same_step(levels: int) -> None:
    total, runs = 120, 12
    rng = np.random.default_rng(levels)
    counts = {0: 30, 1: 90} if levels == 1 else {0: 10, 1: 95, 2: 15}
    values = sim.shuffled(counts, runs, rng)
    candidates = np.tile(np.arange(total * levels + 1), (runs, 1))
    too_low, too_high = sim.exclusions(values, candidates, levels)
    out_at = np.minimum(too_low, too_high)
    for run in range(runs):
        sequence = sequential.ConfidenceSequence(total, levels=levels)
        for t, units in enumerate(values[run], start=1):
            sequence.observe(int(units) / levels)
            alive = np.flatnonzero(out_at[run] > t)
            sums = sequence.sums()
            if sums is None:
                assert alive.size == 0
            else:  # the plain sequence is an interval, and the twin agrees on every candidate
                assert alive.tolist() == list(range(sums[0], sums[1] + 1))


def test_the_twin_stops_where_decide_stops() -> None:
    rng = np.random.default_rng(7)
    band = sequential.passing(gate(), N)
    assert band is not None
    for right in (0, 760, 840, 1100):
        values = sim.shuffled({1: right, 0: N - right}, 2, rng)
        too_low, too_high = sim.exclusions(values, np.tile(np.array(band), (2, 1)))
        expected = sim.at_shards(sim.stops(too_low, too_high, True, N), ENDS)
        for run in range(2):
            scores, stopped_at = sequential.score_sequence(N), N + 1
            for start, end in itertools.pairwise([0, *ENDS]):
                scores.extend(values[run, start:end].astype(float).tolist())
                if sequential.decide(gate(), scores).stop:
                    stopped_at = scores.answered
                    break
            assert stopped_at == expected[run], right


@pytest.mark.parametrize("true_mean", [0.0, 0.3, 0.5, 0.703, 0.9])
def test_the_true_score_leaves_the_sequence_in_fewer_than_alpha_of_runs(true_mean: float) -> None:
    right = round(true_mean * N)
    values = sim.shuffled({1: right, 0: N - right}, RUNS, np.random.default_rng(int(true_mean * 1000)))
    too_low, too_high = sim.exclusions(values, np.full((RUNS, 1), right))
    missed = (np.minimum(too_low, too_high) <= N).mean()
    assert missed < ALPHA, f"true mean {true_mean}: excluded at some step in {missed:.2%} of {RUNS} runs"


def band_runs(right: int, runs: int, two_sided: bool = True, seed: int = 0) -> np.ndarray:
    """The number answered when each run stops (N + 1: never), deciding per shard, for a true score right / N."""
    band = sequential.passing(gate(two_sided=two_sided), N)
    assert band is not None
    values = sim.shuffled({1: right, 0: N - right}, runs, np.random.default_rng(seed))
    too_low, too_high = sim.exclusions(values, np.tile(np.array(band), (runs, 1)))
    return sim.at_shards(sim.stops(too_low, too_high, two_sided, N), ENDS)


def test_a_healthy_port_is_stopped_wrongly_in_fewer_than_alpha_of_runs() -> None:
    stopped = band_runs(927, RUNS, seed=1) <= N  # 927 / 1319 = 0.703, the baseline itself
    assert stopped.mean() < ALPHA
    # and at the band's edge: the lowest score that passes
    assert (band_runs(901, RUNS // 5, seed=2) <= N).mean() < ALPHA


def test_a_healthy_port_against_a_lower_gate_is_stopped_wrongly_in_fewer_than_alpha_of_runs() -> None:
    assert (band_runs(927, RUNS // 5, two_sided=False, seed=3) <= N).mean() < ALPHA


def test_a_broken_port_is_stopped_within_the_first_100_questions_in_every_run() -> None:
    assert band_runs(0, RUNS, seed=4).max() <= 100


def test_the_certainty_rule_never_stops_a_healthy_run() -> None:
    rng, healthy = random.Random(5), gate()
    for right in (901, 927, 953):
        answers = [True] * right + [False] * (N - right)
        for _ in range(20):
            rng.shuffle(answers)
            for answered in [0, *ENDS]:
                assert not sequential.certainty(healthy, N, answered, sum(answers[:answered])).stop


@pytest.mark.parametrize(
    ("name", "counts", "wrongly"),
    [
        # the reference's 927 right; the candidate as good, with 60 questions flipped each way
        ("healthy, paired", {0: 60, 1: N - 120, 2: 60}, True),
        # the candidate 20 questions worse than the reference: 907 / 1319 = 0.6876, near the band's edge
        ("healthy edge, paired", {0: 40, 1: N - 60, 2: 20}, True),
        ("broken, paired", {0: 927, 1: N - 927}, False),
    ],
)
def test_the_paired_sequence(name: str, counts: dict[int, int], wrongly: bool) -> None:
    runs, reference_right = RUNS // 5, 927
    band = sequential.passing(gate(), N)
    assert band is not None
    difference = counts.get(2, 0) - counts.get(0, 0)
    values = sim.shuffled(counts, runs, np.random.default_rng(len(name)))
    truth = np.full((runs, 1), N + difference)  # the sum of (d + 1) in half units
    edges = np.array([b - reference_right + N for b in band])  # final right = reference_right + sum - N
    too_low, too_high = sim.exclusions(values, np.hstack([truth, np.tile(edges, (runs, 1))]), levels=2)
    assert (np.minimum(too_low[:, 0], too_high[:, 0]) <= N).mean() < ALPHA
    stopped = sim.at_shards(sim.stops(too_low[:, 1:], too_high[:, 1:], True, N), ENDS)
    if wrongly:
        assert (stopped <= N).mean() < ALPHA
    else:
        assert stopped.max() <= ENDS[2]  # within the first three shards (56 questions)
