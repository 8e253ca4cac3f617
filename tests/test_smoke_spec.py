"""The smoke spec: the card's defaults, one-sentence refusals, and the sampling every backend generates with."""

from __future__ import annotations

from typing import Any

import pytest

from gate.checks.smoke import spec
from gate.thinking import split_thinking

# The model card's generation_config.json (Qwen3-4B-Thinking-2507's), as its table lists it.
CARD_GENERATION_CONFIG = {
    "temperature": 0.6,
    "top_p": 0.95,
    "top_k": 20,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "bos_token_id": 151643,
}


def test_the_defaults_are_the_model_cards_sample_outputs() -> None:
    checked = spec.check({"model": "/models/port"})
    assert checked == {
        "model": "/models/port",
        "backend": "hf",
        "device": "cpu",
        "dtype": "auto",
        "engine_args": {},
        "prompts": [
            "What is the capital of France?",
            "2+2等于多少?只需给出数字。",
            "根据我们之前的对话,我们讨论过的客户叫什么名字?",
            "编写一个 Python 函数来检查字符串是否为回文。",
        ],
        "sampling": {"temperature": 0.7, "max_tokens": 256, "top_p": None, "top_k": None, "seed": None},
    }
    assert spec.check(checked) == checked  # the worker checks the stored spec again
    assert spec.check({"model": "/m", "backend": "vllm-ascend"})["device"] == "npu"


def test_a_spec_of_ones_own() -> None:
    checked = spec.check(
        {
            "model": "org/name",
            "backend": "vllm",
            "device": "cuda:0,1",
            "dtype": "bfloat16",
            "engine_args": {"max_model_len": 4096, "enforce_eager": True},
            "prompts": ["def f():\n\treturn 1\n", "你好"],
            "sampling": {"temperature": 0, "max_tokens": 32768, "top_p": 0.8, "top_k": 0, "seed": 2**32 - 1},
        }
    )
    assert checked["prompts"] == ["def f():\n\treturn 1\n", "你好"]  # tabs and newlines are a prompt's own
    assert checked["sampling"] == {"temperature": 0.0, "max_tokens": 32768, "top_p": 0.8, "top_k": 0, "seed": 2**32 - 1}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ([], "the smoke spec must be an object."),
        ({"model": "/m", "tasks": ["gsm8k"]}, "the smoke spec has unknown keys: tasks."),
        ({"model": ""}, "model must name a model."),
        ({"model": "/m,x=1"}, "model must be a hub or ModelScope id (org/name) or a path, without spaces, ',' or '='."),
        ({"model": "/m", "backend": "tgi"}, "backend must be one of hf, vllm, vllm-ascend, openai, not 'tgi'."),
        ({"model": "/m", "device": "gpu"}, "device must be cpu, cuda[:ids] or npu[:ids], not 'gpu'."),
        ({"model": "/m", "backend": "vllm", "device": "npu"}, "backend vllm does not generate on npu."),
        ({"model": "/m", "backend": "vllm-ascend", "device": "cpu"}, "backend vllm-ascend does not generate on cpu."),
        ({"model": "/m", "dtype": "int8"}, "dtype must be one of auto, float32, bfloat16, float16, not 'int8'."),
        (
            {"model": "/m", "engine_args": {"base_url": "http://10.0.0.1:8000"}},
            "engine_args.base_url is not allowed: the openai backend uses the worker's server.",
        ),
        ({"model": "/m", "engine_args": {"model": "/other"}}, "engine_args.model is set by the worker or the spec"),
        ({"model": "/m", "engine_args": {"dtype": "float16"}}, "engine_args.dtype is set by the worker or the spec"),
        ({"model": "/m", "engine_args": {"port": 1}}, "engine_args.port is set by the worker or the spec"),
        ({"model": "/m", "engine_args": {"Bad-Name": 1}}, "engine_args key 'Bad-Name' must be an argument name"),
        ({"model": "/m", "engine_args": {"x": None}}, "engine_args.x must be a string, number, boolean or object."),
        (
            {"model": "m", "backend": "openai", "engine_args": {"max_model_len": 1}},
            "engine_args do not apply to the openai backend: its server is already running.",
        ),
        (
            {"model": "m", "backend": "openai", "dtype": "float32"},
            "dtype does not apply to the openai backend: its server chose its own.",
        ),
        ({"model": "/m", "prompts": []}, "prompts must be a list of 1 to 32 strings."),
        ({"model": "/m", "prompts": ["x"] * 33}, "prompts must be a list of 1 to 32 strings."),
        ({"model": "/m", "prompts": "What?"}, "prompts must be a list of 1 to 32 strings."),
        (
            {"model": "/m", "prompts": ["ok", "  \n"]},
            "prompts[1] must be a non-blank string of at most 8000 characters.",
        ),
        ({"model": "/m", "prompts": ["x" * 8001]}, "prompts[0] must be a non-blank string of at most 8000 characters."),
        ({"model": "/m", "prompts": ["a\x00b"]}, "prompts[0] holds a control character other than a tab or a newline."),
        ({"model": "/m", "sampling": [0.7]}, "sampling must be an object such as"),
        (
            {"model": "/m", "sampling": {"top_n": 1}},
            "sampling has unknown keys: top_n; known: temperature, max_tokens,",
        ),
        (
            {"model": "/m", "sampling": {"temperature": -0.1}},
            "sampling.temperature must be a number from 0 to 2, got -0.1.",
        ),
        (
            {"model": "/m", "sampling": {"temperature": True}},
            "sampling.temperature must be a number from 0 to 2, got True.",
        ),
        (
            {"model": "/m", "sampling": {"max_tokens": 0}},
            "sampling.max_tokens must be an integer from 1 to 32768, got 0.",
        ),
        ({"model": "/m", "sampling": {"max_tokens": 2.5}}, "sampling.max_tokens must be an integer from 1 to 32768"),
        ({"model": "/m", "sampling": {"top_p": 0}}, "sampling.top_p must be a number above 0 and at most 1, got 0."),
        (
            {"model": "/m", "sampling": {"top_p": float("nan")}},
            "sampling.top_p must be a number above 0 and at most 1, got nan.",
        ),
        ({"model": "/m", "sampling": {"top_k": -1}}, "sampling.top_k must be an integer from 0 to 100000, got -1."),
        ({"model": "/m", "sampling": {"seed": 2**32}}, "sampling.seed must be an integer from 0 to 4294967295"),
    ],
)
def test_a_bad_spec_is_one_sentence(given: Any, said: str) -> None:
    with pytest.raises(ValueError) as refused:
        spec.check(given)
    assert str(refused.value).startswith(said)
    assert str(refused.value).endswith(".") and "\n" not in str(refused.value)


def test_what_the_spec_leaves_unset_comes_from_generation_config_as_vllm_auto_does() -> None:
    card = spec.check({"model": "/m"})["sampling"]
    # the card's temperature and max_tokens win over the file's 0.6; top_p and top_k are the file's
    assert spec.effective(card, CARD_GENERATION_CONFIG) == {
        "temperature": 0.7,
        "max_tokens": 256,
        "top_p": 0.95,
        "top_k": 20,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "seed": None,
    }
    own = spec.check({"model": "/m", "sampling": {"top_k": 5, "seed": 1}})["sampling"]
    assert spec.effective(own, CARD_GENERATION_CONFIG)["top_k"] == 5
    assert spec.effective(own, CARD_GENERATION_CONFIG)["seed"] == 1
    penalised = spec.effective(own, {"repetition_penalty": 1.05, "min_p": 0.1, "presence_penalty": 1.5})
    assert (penalised["repetition_penalty"], penalised["min_p"], penalised["presence_penalty"]) == (1.05, 0.1, 1.5)


def test_without_generation_config_the_neutral_values() -> None:
    checked = spec.check({"model": "/m", "sampling": {"temperature": 0}})["sampling"]
    neutral = {"top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
    neutral |= {"presence_penalty": 0.0, "frequency_penalty": 0.0}
    assert spec.effective(checked, None) == {"temperature": 0.0, "max_tokens": 256, "seed": None, **neutral}
    # a file's nonsense or the old spelling of "no top-k" is no parameter
    assert spec.effective(checked, {"top_k": -1, "top_p": "high", "min_p": True})["top_k"] == 0
    assert spec.effective(checked, {"top_p": "high", "min_p": True})["top_p"] == 1.0


@pytest.mark.parametrize(
    ("text", "opened", "split"),
    [
        ("<think>\nParis.\n</think>\n\nParis.", False, ("Paris.", "Paris.")),
        ("Paris.\n</think>\n\nThe capital is Paris.", True, ("Paris.", "The capital is Paris.")),
        ("still thinking when max_tokens came", True, ("still thinking when max_tokens came", "")),
        ("<think>\n\n</think>\n\n", False, ("", "")),  # an empty answer after a closed block: still output
        ("4", False, (None, "4")),
        ("", True, ("", "")),
    ],
)
def test_the_one_reasoning_rule_reads_an_output_whose_prompt_opened_the_block(
    text: str, opened: bool, split: tuple[str | None, str]
) -> None:
    assert split_thinking(text, opened) == split
