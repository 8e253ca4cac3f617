"""The smoke verdict and the report's check, on reports the hf backend really generated for the tiny Qwen3 and
its variants (tests/smoke_models.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gate.checks.smoke import judge, report
from tests import smoke_models

CARD_PROMPTS = 4


@pytest.fixture(scope="module")
def models(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("smoke-models")
    return {
        "tiny": str(tiny_model),
        "thinking": str(smoke_models.thinking(tiny_model, root / "thinking")),
        "silent": str(smoke_models.silent(tiny_model, root / "silent")),
    }


def test_every_prompt_answered_passes(tiny_model: Path) -> None:
    generated = smoke_models.real_report(str(tiny_model))
    assert [len(o["text"]) > 0 for o in generated["outputs"]] == [True] * CARD_PROMPTS
    assert judge.judge(generated["outputs"], 16) == ("pass", ["all 4 prompt(s) produced output."])
    assert report.check(copy.deepcopy(generated), generated["spec"]) == generated


def test_a_model_that_stops_at_once_fails_naming_each_prompt(models: dict[str, str]) -> None:
    generated = smoke_models.real_report(models["silent"], temperature=0.0)
    assert [(o["text"], o["completion_tokens"], o["finish_reason"]) for o in generated["outputs"]] == [
        ("", 1, "stop")
    ] * CARD_PROMPTS  # the stop token alone
    outcome, reasons = judge.judge(generated["outputs"], 16)
    assert outcome == "fail"
    assert reasons == [
        'prompt 1 ("What is the capital of France?") produced no output.',
        'prompt 2 ("2+2等于多少?只需给出数字。") produced no output.',
        'prompt 3 ("根据我们之前的对话,我们讨论过的客户叫什么名字?") produced no output.',
        'prompt 4 ("编写一个 Python 函数来检查字符串是否为回文。") produced no output.',
    ]
    assert report.check(generated, generated["spec"]) == generated  # nothing impossible about silence


def test_reasoning_cut_off_at_max_tokens_is_output_with_a_note(models: dict[str, str]) -> None:
    generated = smoke_models.real_report(models["thinking"])
    first = generated["outputs"][0]
    # the template opened the block, so the whole generation is reasoning, and it never closed
    assert first["reasoning"] == first["text"].strip() and first["answer"] == "" and first["finish_reason"] == "length"
    outcome, reasons = judge.judge(generated["outputs"], 16)
    assert outcome == "pass" and reasons[0] == "all 4 prompt(s) produced output."
    assert reasons[1] == (
        'prompt 1 ("What is the capital of France?") reached max_tokens (16) inside its reasoning: no answer yet.'
    )
    assert report.check(generated, generated["spec"]) == generated


def test_a_long_prompt_is_quoted_short() -> None:
    assert judge.shown("a  b\n" + "c" * 100) == "a b " + "c" * 55 + "…"


def mutated(generated: dict[str, Any], change) -> dict[str, Any]:
    broken = copy.deepcopy(generated)
    change(broken)
    return broken


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: r.pop("versions"), "the report must hold exactly backend, device_kind, model_config, outputs,"),
        (lambda r: r["spec"]["sampling"].update(seed=8), "the report is for another smoke spec than the run's."),
        (lambda r: r.update(backend="vllm"), "the report's backend 'vllm' is not the spec's 'hf'."),
        (lambda r: r.update(device_kind="npu"), "the report's device kind 'npu' is not the spec's."),
        (lambda r: r["sampling"].update(temperature=0.6), "sampling.temperature is 0.6; the spec asks for 0.7."),
        (lambda r: r["sampling"].update(top_p=-1), "sampling.top_p is -1: it cannot be negative."),
        (lambda r: r["sampling"].update(frequency_penalty=None), "sampling.frequency_penalty must be a finite number"),
        (lambda r: r["sampling"].pop("min_p"), "sampling must hold exactly frequency_penalty, max_tokens, min_p,"),
        (lambda r: r["outputs"].pop(), "outputs must be a list of 4 entries, one per prompt of the spec."),
        (
            lambda r: r["outputs"].reverse(),
            "outputs[0].prompt is not the spec's prompt 'What is the capital of France?'",
        ),
        (
            lambda r: r["outputs"][1].update(completion_tokens=-3),
            "outputs[1].completion_tokens must be a non-negative integer, got -3.",
        ),
        (lambda r: r["outputs"][1].update(prompt_tokens=-1), "outputs[1].prompt_tokens must be a non-negative integer"),
        (
            lambda r: r["outputs"][2].update(completion_tokens=17),
            "outputs[2].completion_tokens is 17, more than the 16",
        ),
        (lambda r: r["outputs"][3].update(completion_tokens=0), "outputs[3] has text but no completion token."),
        (
            lambda r: r["outputs"][0].update(completion_tokens=1.5),
            "outputs[0].completion_tokens must be a non-negative",
        ),
        (
            lambda r: r["outputs"][0].update(answer="Paris."),
            "outputs[0]: reasoning and answer are not the text split at its <think> block.",
        ),
        (lambda r: r["outputs"][0].update(finish_reason=""), "outputs[0].finish_reason must be a non-empty string"),
        (lambda r: r["outputs"][0].update(logprobs=[]), "outputs[0] must hold exactly answer, completion_tokens,"),
        (lambda r: r["outputs"][0].update(text=7), "outputs[0].text must be a string of at most 400000 characters."),
        (
            lambda r: r["model_config"]["config"].update(rope_theta=float("inf")),
            "model_config.config.rope_theta must be a finite number, got inf.",
        ),
        (
            lambda r: r.update(model_config={"config": {}}),
            "model_config must hold exactly config and generation_config.",
        ),
        (
            lambda r: r["versions"].update(torch=""),
            "versions.torch must be a non-empty string of at most 200 characters.",
        ),
    ],
)
def test_an_impossible_report_is_refused_in_one_sentence(tiny_model: Path, change, said: str) -> None:
    generated = smoke_models.real_report(str(tiny_model))
    with pytest.raises(report.BadReport) as refused:
        report.check(mutated(generated, change), generated["spec"])
    assert str(refused.value).startswith(said), str(refused.value)
    assert "\n" not in str(refused.value)
