"""The serving report's strict check and the verdict against a reference run (pure), on figures read from a real
`vllm bench serve` result (tests/serving_reports.py)."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from gate.checks.serving import judge, report, spec
from tests.serving_reports import PROMPTS, report_for

RAW = {"model": "/models/tiny", "num_prompts": PROMPTS, "rounds": 3}
CARD = spec.check(RAW)
SWEEP = spec.check({"model": "/models/tiny", "profile": "sweep", "num_prompts": PROMPTS, "concurrencies": [1, 2, 4]})
LIMITS = judge.Thresholds()


def test_a_real_benchmark_report_passes_the_check() -> None:
    built = report_for(SWEEP)
    assert report.check(built, SWEEP) is built
    assert built["levels"][0]["rounds"][0]["output_throughput"] == pytest.approx(1368.319416430921)


def _broken(path: list[Any], value: Any, checked: dict[str, Any] = CARD) -> str:
    built = copy.deepcopy(report_for(checked))
    target = built
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    with pytest.raises(report.BadReport) as caught:
        report.check(built, checked)
    return str(caught.value)


ROUND = ["levels", 0, "rounds", 1]


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        ([*ROUND, "output_throughput"], math.nan, "levels[0].rounds[1].output_throughput must be a finite number"),
        ([*ROUND, "output_throughput"], math.inf, "must be a finite number, got inf"),
        ([*ROUND, "mean_tpot_ms"], -1.0, "levels[0].rounds[1].mean_tpot_ms is -1.0: it cannot be negative."),
        ([*ROUND, "mean_tpot_ms"], KeyError, "levels[0].rounds[1].mean_tpot_ms must be a finite number, got None"),
        ([*ROUND, "p90_ttft_ms"], 1e6, "the ttft percentiles must be ordered median <= p90 <= p99"),
        ([*ROUND, "median_itl_ms"], 1e6, "the itl percentiles must be ordered median <= p90 <= p99"),
        ([*ROUND, "failed"], 1, "30 completed and 1 failed requests are not the spec's 30."),
        ([*ROUND, "completed"], True, "levels[0].rounds[1].completed must be an integer"),
        ([*ROUND, "input_lens"], [1] * 30, "input_lens must be a number, a string or null, not a list."),
        ([*ROUND, "x" * 11], "y" * 10_001, "must be a non-empty string of at most 10000 characters."),
        (["levels", 0, "rounds"], [], "levels[0].rounds must be a list of 1 to 10 entries."),
        (["levels", 0, "concurrency"], 8, "the report measures concurrency [8]; the spec asks for [10]."),
        (["levels"], [], "levels must be a list of 1 to 8 entries."),
        (["server", "kv_cache_gib"], "46.77", "server.kv_cache_gib must be a finite number"),
        (["vllm_version"], "", "vllm_version must be a non-empty string"),
        (["vllm_version"], 32, "vllm_version must be a non-empty string"),
        (["spec", "rounds"], 2, "the report is for another serving spec than the run's."),
    ],
)
def test_an_impossible_report_is_refused_in_one_sentence(path: list[Any], value: Any, said: str) -> None:
    message = _broken(path, value)
    assert said in message and message.endswith(".") and "\n" not in message


def test_a_round_too_few_is_refused() -> None:
    built = report_for(CARD)
    built["levels"][0]["rounds"].pop()
    with pytest.raises(report.BadReport, match=r"levels\[0\] has 2 round\(s\); the spec asks for 3\."):
        report.check(built, CARD)


def test_without_a_reference_the_run_is_measured_not_gated() -> None:
    assert judge.judge(report_for(CARD), None, None, LIMITS) == (None, [judge.NOT_GATED])


def test_a_rerun_of_the_reference_passes() -> None:
    outcome, reasons = judge.judge(report_for(SWEEP, [0.99, 1.0, 1.01]), report_for(SWEEP), 7, LIMITS)
    assert outcome == judge.PASS
    assert reasons == [
        "3 level(s) within 97% of reference run 7's output throughput and 103% of its mean TPOT, or within the "
        "rounds' spread."
    ]


def test_half_the_speed_fails_with_the_drop_and_both_spreads_shown() -> None:
    outcome, reasons = judge.judge(report_for(CARD, [0.49, 0.5, 0.51]), report_for(CARD, [0.99, 1.0, 1.01]), 7, LIMITS)
    assert outcome == judge.FAIL
    assert reasons[0] == (
        "c=10: output throughput 684.2 tok/s is 50.0% of the reference's 1368 tok/s, below 97%; rounds "
        "670.5..697.8 tok/s against 1355..1382 tok/s."
    )
    assert reasons[1] == (
        "c=10: mean TPOT 14.04 ms is 200.0% of the reference's 7.02 ms, above 103%; rounds 13.76..14.33 ms against "
        "6.95..7.09 ms."
    )
    assert len(reasons) == 2


def test_a_drop_within_the_rounds_spread_is_not_a_fail() -> None:
    # mean 0.95 of the reference, below 0.97, but the best round (1.05) beats 0.97 x the reference's worst (0.97)
    outcome, reasons = judge.judge(report_for(CARD, [0.85, 0.95, 1.05]), report_for(CARD, [1.0, 1.0, 1.0]), 7, LIMITS)
    assert outcome == judge.PASS
    assert reasons[1].startswith("c=10: output throughput")
    assert reasons[1].endswith(judge.WITHIN_SPREAD)


def test_one_round_each_is_the_plain_ratio() -> None:
    one = spec.check({**RAW, "rounds": 1})
    assert judge.judge(report_for(one, [0.975]), report_for(one, [1.0]), 7, LIMITS)[0] == judge.PASS
    assert judge.judge(report_for(one, [0.965]), report_for(one, [1.0]), 7, LIMITS)[0] == judge.FAIL
    lax = judge.Thresholds.from_mapping({"throughput_ratio": 0.9, "tpot_ratio": 1.2})
    assert judge.judge(report_for(one, [0.92]), report_for(one, [1.0]), 7, lax)[0] == judge.PASS


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"device_kind": "npu"}, "the device kind differs (cpu here, npu in the reference)"),
        ({"vllm_version": "0.31.0"}, "the vLLM version differs (0.32.0 here, 0.31.0 in the reference)"),
        ({"vllm_version": None}, "the vLLM version differs (0.32.0 here, unknown in the reference)"),
        (
            {"engine_args": {"max_num_seqs": 1}},
            "the engine arguments differ (max_model_len: 512 vs None, max_num_seqs: None vs 1)",
        ),
    ],
)
def test_a_reference_measured_differently_is_not_comparable(change: dict[str, Any], said: str) -> None:
    checked = spec.check({**RAW, "engine_args": {"max_model_len": 512}})
    outcome, reasons = judge.judge(report_for(checked), {**report_for(checked), **change}, 7, LIMITS)
    assert outcome == judge.NOT_COMPARABLE
    assert reasons == [f"not comparable with reference run 7: {said}."]


def test_another_profile_is_not_comparable() -> None:
    sweep = spec.check({**SWEEP, "concurrencies": [10]})
    outcome, reasons = judge.judge(report_for(CARD), report_for(sweep), 7, LIMITS)
    assert (outcome, reasons) == (
        judge.NOT_COMPARABLE,
        ["not comparable with reference run 7: the profile differs (card here, sweep in the reference)."],
    )


def test_levels_the_reference_lacks_are_named_not_gated() -> None:
    wider = spec.check({**SWEEP, "concurrencies": [1, 2, 4, 8]})
    outcome, reasons = judge.judge(report_for(wider), report_for(SWEEP), 7, LIMITS)
    assert outcome == judge.PASS
    assert reasons[-1] == "concurrency 8 not gated: the reference did not measure it."


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"throughput_ratio": 0}, "the serving setting throughput_ratio must be a positive number, got 0."),
        ({"tpot_ratio": "1.03"}, "the serving setting tpot_ratio must be a positive number"),
        ({"reference_run": 1.5}, "the serving setting reference_run must be a run id, got 1.5."),
        ({"ratio": 1}, "unknown serving setting(s) ratio; known: throughput_ratio, tpot_ratio, reference_run."),
        ([1], "the serving settings must be a mapping"),
    ],
)
def test_bad_baseline_settings_are_one_sentence(settings: Any, said: str) -> None:
    with pytest.raises(ValueError) as caught:
        judge.Thresholds.from_mapping(settings)
    assert said in str(caught.value)
