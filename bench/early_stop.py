"""Deciding early (issue 15), simulated: how many of GSM8K's 1319 questions a run answers before it is stopped, and
how often a healthy run is stopped wrongly, over random question orders, against a 0.703 +/- 2 pp gate.

    .venv/bin/python bench/early_stop.py [--runs 10000] [--first-shard 8] [--shard 40] [--alpha 0.05] [--seed 0]

Each run answers a fixed population (its true score right / 1319) in a random order and decides after each shard:
the certainty rule alone, and with the confidence sequence (gate.verdicts.sequential; simulated by its vectorised
twin, gate.verdicts.sequential_sim). Unpaired: the run's own answers. Paired: the differences from a reference run
that got 927 right (0.703), the candidate flipping some of the reference's answers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.checks.accuracy import judge
from gate.verdicts import sequential
from gate.verdicts import sequential_sim as sim

N = 1319
BASELINE, TOLERANCE_PP = 0.703, 2.0
REFERENCE_RIGHT = 927  # 927 / 1319 = 0.7028

# name, true numbers right, paired counts of (d + 1) in {0, 1, 2} (None: unpaired)
SCENARIOS: list[tuple[str, int, dict[int, int] | None]] = [
    ("broken (0 %)", 0, None),
    ("mildly broken (0.60)", 791, None),
    ("healthy (0.703)", 927, None),
    ("broken (0 %), paired", 0, {0: REFERENCE_RIGHT, 1: N - REFERENCE_RIGHT}),
    ("mildly broken (0.60), paired: 150 right answers lost, 14 gained", 791, {0: 150, 1: N - 164, 2: 14}),
    ("healthy (0.703), paired: 60 answers flipped each way", 927, {0: 60, 1: N - 120, 2: 60}),
]


def certainty_stops(values: np.ndarray, band: tuple[int, int], ends: list[int]) -> np.ndarray:
    """The number answered when the certainty rule first stops each run (unpaired answers), N + 1 if never."""
    runs = values.shape[0]
    at = np.full(runs, N + 1)
    right = np.cumsum(values, axis=1)
    for answered in ends:
        k = right[:, answered - 1]
        stop = (k + (N - answered) < band[0]) | (k > band[1])
        at = np.where((at > N) & stop, answered, at)
    return at


def describe(at: np.ndarray) -> str:
    stopped = at <= N
    answered = np.minimum(at, N)
    return f"{stopped.mean():.2%} | {np.median(answered):.0f} | {np.percentile(answered, 90):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--first-shard", type=int, default=sequential.FIRST_SHARD)
    parser.add_argument("--shard", type=int, default=sequential.SHARD_MOST, help="questions a shard at most")
    parser.add_argument("--alpha", type=float, default=sequential.ALPHA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gate = sequential.Gate(
        BASELINE,
        TOLERANCE_PP,
        True,
        lambda score: judge.within_tolerance(judge.delta_pp(score, BASELINE), TOLERANCE_PP, True),
    )
    band = sequential.passing(gate, N)
    assert band is not None
    rng = np.random.default_rng(args.seed)
    ends = sequential.shard_ends(N, args.first_shard, args.shard)
    print(
        f"gate {gate.describe()}: {band[0]}..{band[1]} of {N} right pass; {args.runs} runs, deciding at {ends[:6]}..."
    )
    print(
        "| scenario | rule | runs stopped | median answered | p90 answered | wrong stops | true score ever "
        "outside the sequence | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, right, paired in SCENARIOS:
        started = time.perf_counter()
        healthy = band[0] <= right <= band[1]
        if paired is None:
            levels, values = 1, sim.shuffled({1: right, 0: N - right}, args.runs, rng)
            truth, edges = right, np.array(band)
        else:
            levels, values = 2, sim.shuffled(paired, args.runs, rng)
            truth = N + right - REFERENCE_RIGHT  # final right = REFERENCE_RIGHT + sum - N, in half units
            edges = np.array([b - REFERENCE_RIGHT + N for b in band])
        candidates = np.hstack([np.full((args.runs, 1), truth), np.tile(edges, (args.runs, 1))])
        too_low, too_high = sim.exclusions(values, candidates, levels, args.alpha)
        missed = (np.minimum(too_low[:, 0], too_high[:, 0]) <= N).mean()
        at = sim.at_shards(sim.stops(too_low[:, 1:], too_high[:, 1:], True, N), ends)
        rule = f"confidence sequence (alpha {args.alpha:g})"
        if paired is None:  # the runner applies the certainty rule in any case
            sure = certainty_stops(values, band, ends)
            wrong = f"{(sure <= N).mean():.2%}" if healthy else "n/a"
            print(f"| {name} | certainty alone | {describe(sure)} | {wrong} | | |")
            at, rule = np.minimum(at, sure), f"certainty and {rule}"
        seconds = time.perf_counter() - started
        wrong = f"{(at <= N).mean():.2%}" if healthy else "n/a"
        print(f"| {name} | {rule} | {describe(at)} | {wrong} | {missed:.2%} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
