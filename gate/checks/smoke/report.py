"""A smoke report: its shape, written down once (Report), and its check before anything of it is stored (pure).

The worker's generation process writes it (gate.checks.smoke.generate); the server checks it strictly: it must
answer the run's own spec (its prompts, in order and number; its sampling), hold only possible numbers (no negative
token count, none past max_tokens, no text without a token), split each output by the one <think> rule, and stay
small enough to store.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

from gate.checks.smoke.spec import DEVICE_KINDS, FROM_GENERATION_CONFIG, device_kind
from gate.thinking import split_thinking

MAX_TEXT_CHARS = 400_000  # one output: 32768 tokens of up to a dozen characters each
MAX_PROMPT_TOKENS = 10_000_000
MAX_KEYS = 200  # per object of a model's configuration files
MAX_DEPTH = 6
MAX_SHORT_CHARS = 200  # a finish reason, a version
MAX_VERSIONS = 20


class Output(TypedDict):
    """One prompt's generation."""

    prompt: str  # the spec's prompt, verbatim: sent as the one user message through the model's chat template
    # The whole raw generation, verbatim: special tokens kept (<think>, </think>), the final stop token not (as
    # vLLM returns it). A server that split the reasoning off itself (a reasoning parser) has it re-joined:
    # reasoning, "</think>", content.
    text: str
    reasoning: str | None  # the <think> block's content (gate.thinking.split_thinking), None without a block
    answer: str  # the text after the block (the whole text without one), stripped; "" when cut off in the block
    finish_reason: str | None  # stop: the model ended; length: max_tokens reached; None where a server did not say
    prompt_tokens: int  # tokens of the chat-templated prompt
    completion_tokens: int  # tokens generated, the stop token included (as vLLM's token_ids and OpenAI usage count)


class ModelConfig(TypedDict):
    """What the model's own files say, read from the folder the worker loaded (or its --openai-tokenizer)."""

    # From config.json (a multimodal model's text_config when the top level lacks a key): architectures,
    # model_type, dtype (transformers 5's name; torch_dtype in older files), hidden_size, intermediate_size,
    # num_attention_heads, num_key_value_heads, num_hidden_layers, vocab_size, max_position_embeddings,
    # rope_theta (top level, or under rope_parameters / rope_scaling as transformers 5 writes it), rms_norm_eps,
    # tie_word_embeddings; None where the file does not say.
    config: dict[str, Any]
    generation_config: dict[str, Any] | None  # generation_config.json whole; None where the folder has none


class Report(TypedDict):
    """What a smoke run records, uploaded once by the worker and stored as smoke.json."""

    spec: dict[str, Any]  # the run's spec as the server stored it (spec.check)
    backend: str  # hf, vllm, vllm-ascend or openai: the spec's
    device_kind: str  # cpu, cuda or npu (for openai, what the spec says the server runs on)
    # The parameters every prompt was generated with (spec.effective): temperature, max_tokens, top_p, top_k
    # (0: all tokens), min_p, repetition_penalty, presence_penalty, frequency_penalty, seed (None: unseeded). The
    # spec's where it sets them, else the model's generation_config.json, else the neutral value.
    sampling: dict[str, Any]
    outputs: list[Output]  # one per prompt of the spec, in its order
    model_config: ModelConfig | None  # None: the model is not a local folder (a server's name without a tokenizer)
    # Package versions in the generating process (python, torch, transformers, vllm, vllm_ascend, torch_npu; None
    # where not installed); for openai also the server's own (GET /version), None where it does not say.
    versions: dict[str, str | None]


class BadReport(ValueError):
    """An uploaded report that is malformed or holds an impossible figure."""


def _object(value: Any, where: str, most: int = MAX_KEYS) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > most:
        raise BadReport(f"{where} must be an object of at most {most} entries.")
    return value


def _count(value: Any, where: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadReport(f"{where} must be a non-negative integer, got {value!r}.")
    if value > high:
        raise BadReport(f"{where} is {value}, more than the {high} possible.")
    return value


def _short(value: Any, where: str, none: bool = True) -> None:
    if value is None and none:
        return
    if not isinstance(value, str) or not value or len(value) > MAX_SHORT_CHARS:
        raise BadReport(f"{where} must be a non-empty string of at most {MAX_SHORT_CHARS} characters.")


def _json(value: Any, where: str, depth: int = 0) -> None:
    """A configuration file's content: JSON values only, finite numbers, bounded in depth, keys and text."""
    if depth > MAX_DEPTH:
        raise BadReport(f"{where} nests deeper than {MAX_DEPTH} levels.")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadReport(f"{where} must be a finite number, got {value!r}.")
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise BadReport(f"{where} is longer than {MAX_TEXT_CHARS} characters.")
    if isinstance(value, dict):
        for key, item in _object(value, where).items():
            _json(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_KEYS:
            raise BadReport(f"{where} must be a list of at most {MAX_KEYS} entries.")
        for i, item in enumerate(value):
            _json(item, f"{where}[{i}]", depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise BadReport(f"{where} must be a JSON value, not a {type(value).__name__}.")


def _sampling(value: Any, asked: dict[str, Any]) -> None:
    used = _object(value, "sampling")
    keys = {"temperature", "max_tokens", "seed", *FROM_GENERATION_CONFIG}
    if set(used) != keys:
        raise BadReport(f"sampling must hold exactly {', '.join(sorted(keys))}.")
    for key in ("temperature", "max_tokens", "top_p", "top_k", "seed"):
        if asked[key] is not None and used[key] != asked[key]:
            raise BadReport(f"sampling.{key} is {used[key]!r}; the spec asks for {asked[key]!r}.")
    for key in ("top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty"):
        number = used[key]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise BadReport(f"sampling.{key} must be a finite number, got {number!r}.")
        if key in ("top_p", "min_p") and number < 0:
            raise BadReport(f"sampling.{key} is {number!r}: it cannot be negative.")
        if key == "repetition_penalty" and number <= 0:
            raise BadReport(f"sampling.repetition_penalty is {number!r}: it must be positive.")
    _count(used["top_k"], "sampling.top_k", 2**31 - 1)


def _output(value: Any, where: str, prompt: str, max_tokens: int) -> None:
    output = _object(value, where)
    keys = set(Output.__annotations__)
    if set(output) != keys:
        raise BadReport(f"{where} must hold exactly {', '.join(sorted(keys))}.")
    if output["prompt"] != prompt:
        raise BadReport(f"{where}.prompt is not the spec's prompt {prompt[:60]!r} (outputs follow the spec's order).")
    text = output["text"]
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        raise BadReport(f"{where}.text must be a string of at most {MAX_TEXT_CHARS} characters.")
    _count(output["prompt_tokens"], f"{where}.prompt_tokens", MAX_PROMPT_TOKENS)
    completion = _count(output["completion_tokens"], f"{where}.completion_tokens", max_tokens)
    if text and not completion:
        raise BadReport(f"{where} has text but no completion token.")
    _short(output["finish_reason"], f"{where}.finish_reason")
    split = (output["reasoning"], output["answer"])
    if split not in (split_thinking(text), split_thinking(text, opened=True)):
        raise BadReport(f"{where}: reasoning and answer are not the text split at its <think> block.")


def check(report: Any, checked: dict[str, Any]) -> dict[str, Any]:
    """The report, if it answers the checked spec with only possible figures; else BadReport."""
    report = _object(report, "the report")
    keys = set(Report.__annotations__)
    if set(report) != keys:
        raise BadReport(f"the report must hold exactly {', '.join(sorted(keys))}.")
    if report["spec"] != checked:
        raise BadReport("the report is for another smoke spec than the run's.")
    if report["backend"] != checked["backend"]:
        raise BadReport(f"the report's backend {report['backend']!r} is not the spec's {checked['backend']!r}.")
    if report["device_kind"] not in DEVICE_KINDS[checked["backend"]] or report["device_kind"] != device_kind(
        checked["device"]
    ):
        raise BadReport(f"the report's device kind {report['device_kind']!r} is not the spec's.")
    _sampling(report["sampling"], checked["sampling"])
    outputs, prompts = report["outputs"], checked["prompts"]
    if not isinstance(outputs, list) or len(outputs) != len(prompts):
        raise BadReport(f"outputs must be a list of {len(prompts)} entries, one per prompt of the spec.")
    for i, (output, prompt) in enumerate(zip(outputs, prompts, strict=True)):
        _output(output, f"outputs[{i}]", prompt, report["sampling"]["max_tokens"])
    if report["model_config"] is not None:
        found = _object(report["model_config"], "model_config")
        if set(found) != {"config", "generation_config"}:
            raise BadReport("model_config must hold exactly config and generation_config.")
        _object(found["config"], "model_config.config")
        _json(found["config"], "model_config.config")
        if found["generation_config"] is not None:
            _object(found["generation_config"], "model_config.generation_config")
            _json(found["generation_config"], "model_config.generation_config")
    versions = _object(report["versions"], "versions", MAX_VERSIONS)
    for name, version in versions.items():
        _short(version, f"versions.{name}")
    return report
