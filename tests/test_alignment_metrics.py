"""The alignment metrics and verdict on hand-made side records: known cosines, KL, perplexities and limits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from gate.checks.alignment import judge, metrics
from gate.checks.alignment.record import Position, SideRecord

LN = math.log


def record(texts: list[tuple[str, list[int], list[Position]]], dtype: str = "float32", fp: str = "tok") -> SideRecord:
    return {
        "backend": "hf",
        "model": "m",
        "dtype": dtype,
        "device": "cpu",
        "top_k": 2,
        "full_logits": False,
        "tokenizer_fingerprint": fp,
        "texts": [
            {
                "name": name,
                "kind": "next_token" if positions[-1]["token"] == -1 else "text",
                "token_ids": ids,
                "positions": positions,
            }
            for name, ids, positions in texts
        ],
    }


def position(token: int, logprob: float | None, top: list[tuple[int, float]]) -> Position:
    return {"token": token, "logprob": logprob, "top": [[t, lp] for t, lp in top]}


def test_union_basis_fills_missing_tokens_with_the_kth_logprob() -> None:
    cand = record([("a", [7, 1], [position(1, LN(0.5), [(1, LN(0.5)), (2, LN(0.3))])])])
    ref = record([("a", [7, 1], [position(1, LN(0.5), [(1, LN(0.5)), (3, LN(0.2))])])])
    result = metrics.compare(cand, ref)
    assert result["cosine_basis"] == "union of top-k log-probabilities"
    spot = result["texts"][0]["positions"][0]
    # union {1, 2, 3}: token 3 missing on the candidate gets its k-th value ln .3, token 2 on the reference ln .2
    a, b = np.array([LN(0.5), LN(0.3), LN(0.3)]), np.array([LN(0.5), LN(0.2), LN(0.2)])
    assert spot["cosine"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert spot["rel_error"] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b))
    # candidate .5 + .3 + .3 = 1.1 leaves no rest and is renormalised; the reference keeps .1 in the rest bucket
    q = [0.5 / 1.1, 0.3 / 1.1, 0.3 / 1.1]
    kl = 0.5 * LN(0.5 / q[0]) + 0.2 * LN(0.2 / q[1]) + 0.2 * LN(0.2 / q[2]) + 0.1 * LN(0.1 / 1e-12)
    assert spot["kl"] == pytest.approx(kl)
    assert spot["top1_match"] is True
    assert spot["top5_overlap"] == 1


def test_full_logits_basis_and_perplexity() -> None:
    ref_positions = [
        position(1, LN(0.5), [(0, LN(0.6)), (1, LN(0.5))]),
        position(2, LN(0.25), [(0, LN(0.6)), (2, LN(0.25))]),
    ]
    cand_positions = [
        position(1, LN(0.5), [(0, LN(0.6)), (1, LN(0.5))]),
        position(2, LN(0.5), [(2, LN(0.5)), (0, LN(0.4))]),
    ]
    cand, ref = record([("t", [0, 1, 2], cand_positions)]), record([("t", [0, 1, 2], ref_positions)])
    ref_logits = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    cand_logits = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    result = metrics.compare(cand, ref, cand_logits, ref_logits)
    assert result["cosine_basis"] == "full-vocabulary logits"
    same, orthogonal = result["texts"][0]["positions"]
    assert same["cosine"] == pytest.approx(1.0) and same["kl"] == pytest.approx(0.0, abs=1e-12)
    assert orthogonal["cosine"] == pytest.approx(0.0)
    assert orthogonal["rel_error"] == pytest.approx(math.sqrt(2))
    z = math.e + 3  # softmax([1,0,0,0]) = [e, 1, 1, 1] / z; the candidate's puts e on token 1
    assert orthogonal["kl"] == pytest.approx((math.e / z) * 1 + (1 / z) * -1)
    assert orthogonal["top1_match"] is False
    text = result["texts"][0]
    assert text["reference_ppl"] == pytest.approx(math.sqrt(8))  # exp(-(ln .5 + ln .25) / 2)
    assert text["candidate_ppl"] == pytest.approx(2.0)
    assert text["ppl_rel_diff"] == pytest.approx((math.sqrt(8) - 2) / math.sqrt(8))
    assert result["overall"]["top1_match_rate"] == 0.5
    assert result["overall"]["cosine_min"] == pytest.approx(0.0)


def test_next_token_prediction_is_the_final_position() -> None:
    final_c = position(-1, None, [(5, LN(0.7)), (6, LN(0.2))])
    final_r = position(-1, None, [(6, LN(0.6)), (5, LN(0.3))])
    result = metrics.compare(record([("p", [4], [final_c])]), record([("p", [4], [final_r])]))
    text = result["texts"][0]
    assert text["prediction"] == {"candidate": 5, "reference": 6, "match": False}
    assert text["candidate_ppl"] is None and text["ppl_rel_diff"] is None  # a one-token prompt scores no token
    assert result["overall"]["ppl_rel_diff_max"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tokenizer_fingerprint": "other"}, "not comparable: the two sides use different tokenizers."),
        (
            {"texts": [{"name": "a", "kind": "text", "token_ids": [7, 2], "positions": []}]},
            "not comparable: the two sides were given different token ids for 'a'.",
        ),
        ({"texts": []}, "not comparable: the two sides were given different probe texts."),
    ],
)
def test_different_inputs_are_refused(change: dict[str, Any], reason: str) -> None:
    ref = record([("a", [7, 1], [position(1, LN(0.5), [(1, LN(0.5)), (2, LN(0.3))])])])
    with pytest.raises(ValueError) as caught:
        metrics.compare({**ref, **change}, ref)  # type: ignore[typeddict-item]
    assert str(caught.value) == reason


def overall(ppl: float | None, kl: float, top1: float = 1.0, cosine: float = 1.0) -> dict[str, Any]:
    return {"ppl_rel_diff_max": ppl, "kl_mean": kl, "top1_match_rate": top1, "cosine_mean": cosine}


def comparison(cand_dtype: str, ref_dtype: str, **figures: Any) -> metrics.Comparison:
    return {
        "candidate": {"dtype": cand_dtype},
        "reference": {"dtype": ref_dtype},
        "cosine_basis": metrics.FULL_BASIS,
        "texts": [],
        "overall": overall(**figures),
    }


def test_fixed_thresholds_are_the_cards() -> None:
    ok = comparison("float32", "float32", ppl=0.00004, kl=1e-9)
    assert judge.judge({"fp32": ok}) == ("pass", ["1 comparison(s) within the fixed thresholds."])
    bad = comparison("float32", "float32", ppl=0.0144, kl=1e-3, top1=0.75, cosine=0.9998)
    outcome, reasons = judge.judge({"fp32": bad})
    assert outcome == "fail"
    assert reasons == [
        "fp32: a text's perplexity differs by 1.440%, more than the 1.00% allowed.",
        "fp32: the most likely token agrees at 75.0% of positions, below the 100% required.",
        "fp32: the mean logit cosine is 0.999800, below 0.9999.",
    ]


def test_cross_precision_without_a_floor_is_not_comparable() -> None:
    outcome, reasons = judge.judge({"bf16 vs fp32": comparison("bfloat16", "float32", ppl=0.0, kl=0.0)})
    assert outcome == "not_comparable"
    assert reasons == [
        "bf16 vs fp32: candidate bfloat16 and reference float32 differ in precision and no noise floor was "
        "measured; ask for both precisions to judge it."
    ]


def test_noise_floor_scales_the_limits() -> None:
    floor = comparison("bfloat16", "float32", ppl=0.012, kl=0.002, top1=0.9, cosine=0.9995)
    within = comparison("bfloat16", "bfloat16", ppl=0.0144, kl=0.003, top1=0.85, cosine=0.9992)
    assert judge.judge({"bf16": within}, floor)[0] == "pass"  # the card's 1.44 % fails the fixed 1 %, not 2 x 1.2 %
    beyond = comparison("bfloat16", "bfloat16", ppl=0.03, kl=0.005, top1=0.75, cosine=0.998)
    outcome, reasons = judge.judge({"bf16": beyond}, floor)
    assert outcome == "fail"
    assert reasons[0] == "bf16: a text's perplexity differs by 3.000%, more than 2.410% (2 x the noise floor's 1.200%)."
    assert len(reasons) == 4


def test_a_zero_floor_allows_rounding_not_more() -> None:
    floor = comparison("bfloat16", "float32", ppl=0.0, kl=0.0)
    rounding = comparison("float32", "float32", ppl=0.00004, kl=1e-8, cosine=0.9999999)
    assert judge.judge({"fp32": rounding}, floor)[0] == "pass"
    assert judge.judge({"fp32": comparison("float32", "float32", ppl=0.001, kl=0.0)}, floor)[0] == "fail"
