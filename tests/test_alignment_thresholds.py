"""Per-baseline alignment thresholds: read from a baseline file's `checks`, checked in one sentence, and used."""

from __future__ import annotations

from typing import Any

import pytest

from gate.baselines.files import parse
from gate.checks.alignment import judge
from gate.checks.alignment.judge import Thresholds
from gate.errors import InvalidInput

BASELINE = {
    "name": "b",
    "model": "m",
    "source": "s",
    "scores": [{"benchmark": "GSM8K", "task": "gsm8k", "metric": "exact_match,strict-match", "score": 0.5}],
}


def comparison(cosine: float) -> dict[str, Any]:
    overall = {"ppl_rel_diff_max": 0.0, "top1_match_rate": 1.0, "cosine_mean": cosine, "kl_mean": 0.0}
    return {"candidate": {"dtype": "float32"}, "reference": {"dtype": "float32"}, "overall": overall}


def test_a_baseline_file_carries_settings_per_kind_and_a_lax_cosine_passes_what_the_card_fails() -> None:
    spec = parse({**BASELINE, "checks": {"alignment": {"cosine": 0.999, "ppl_rel_diff": 0.02}}}, "b.yaml")
    assert spec.checks == {"alignment": {"cosine": 0.999, "ppl_rel_diff": 0.02}}
    lax = Thresholds.from_mapping(spec.checks["alignment"])
    assert (lax.cosine, lax.ppl_rel_diff, lax.top1_match) == (0.999, 0.02, 1.0)
    figures = {"fp32": comparison(0.9995)}
    assert judge.judge(figures)[0] == "fail"
    assert judge.judge(figures, thresholds=lax) == ("pass", ["1 comparison(s) within the fixed thresholds."])
    assert parse(BASELINE, "b.yaml").checks is None and Thresholds.from_mapping(None) == Thresholds()


@pytest.mark.parametrize(
    ("settings", "sentence"),
    [
        (
            {"cosin": 0.9},
            "unknown alignment threshold(s) cosin; known: ppl_rel_diff, top1_match, cosine, "
            "noise_factor, ppl_epsilon, kl_epsilon, cosine_epsilon.",
        ),
        ({"cosine": 1.5}, "the alignment threshold cosine must be a number from -1 to 1, got 1.5."),
        ({"top1_match": "all"}, "the alignment threshold top1_match must be a number from 0 to 1, got 'all'."),
        (
            {"ppl_rel_diff": float("nan")},
            "the alignment threshold ppl_rel_diff must be a finite, non-negative number, got nan.",
        ),
        ({"noise_factor": -2}, "the alignment threshold noise_factor must be a finite, non-negative number, got -2."),
        ([0.9], "the alignment thresholds must be a mapping such as {cosine: 0.9999}."),
    ],
)
def test_thresholds_that_cannot_judge_are_one_sentence(settings: Any, sentence: str) -> None:
    with pytest.raises(ValueError) as caught:
        Thresholds.from_mapping(settings)
    assert str(caught.value) == sentence


def test_a_checks_section_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse({**BASELINE, "checks": {"alignment": 0.9}}, "b.yaml")
    assert caught.value.message == "b.yaml: checks must map a check kind to its settings"
