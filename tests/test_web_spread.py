"""The run report's SE and interval: never a zero-width interval for a score of 0 or 1."""

from __future__ import annotations

import math
from dataclasses import asdict

from gate.baselines import files
from gate.baselines.models import Baseline, BaselineScore
from gate.checks.accuracy import judge as verdict
from gate.dashboard import views
from gate.runs.models import Run, Score, TaskVerdict

METRIC = "exact_match,strict-match"
PUBLISHED = files.Reference(benchmark="GSM8K", task="gsm8k", metric=METRIC, num_fewshot=5, score=0.703)


def judged_run(value: float, stderr: float, n: int) -> Run:
    """A run as the store holds it after judging, built from gate.checks.accuracy.judge's own verdict."""
    candidate = verdict.Candidate("gsm8k", METRIC, value, stderr, n, {"num_fewshot": 5, "limit": n})
    judged = verdict.judge(candidate, PUBLISHED)
    baseline = Baseline(name="published", model="m", source="s", kind="published")
    baseline.scores = [BaselineScore(benchmark="GSM8K", task="gsm8k", metric=METRIC, num_fewshot=5, score=0.703)]
    run = Run(model="acme/smoke", baseline=baseline)
    run.scores = [Score(task="gsm8k", metric=METRIC, value=value, stderr=stderr, n_samples=n)]
    run.verdicts = [
        TaskVerdict(task="gsm8k", outcome=judged.outcome.value, delta_pp=judged.delta_pp, details=asdict(judged))
    ]
    return run


def test_a_score_of_zero_shows_the_se_the_note_gives() -> None:
    run = judged_run(0.0, 0.0, 8)
    details = run.verdicts[0].details
    assert details["candidate_stderr_pp"] == 0.0  # what lm-eval reports for 8 wrong answers
    spread = views.spreads(run)["gsm8k"]
    assert spread.from_baseline and spread.se_pp is not None and spread.interval is not None
    assert f"about {spread.se_pp:.2f} pp" in details["notes"][0]  # the figure the note quotes, 16.16
    low, high = spread.interval
    assert math.isclose((low + high) / 2, -70.3) and high - low > 60


def test_a_run_with_its_own_se_keeps_the_verdicts_interval() -> None:
    run = judged_run(0.5, 0.05, 100)
    spread = views.spreads(run)["gsm8k"]
    assert not spread.from_baseline
    assert spread.se_pp is not None and math.isclose(spread.se_pp, 5.0)
    assert spread.interval == tuple(run.verdicts[0].details["delta_ci95_pp"])


def test_no_count_no_se() -> None:
    run = judged_run(1.0, 0.0, 8)
    run.scores[0].n_samples = None
    assert views.spreads(run)["gsm8k"] == views.Spread(None, None, False)
