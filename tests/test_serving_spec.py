"""The serving spec: defaults, one-sentence refusals, and the profiles as `vllm serve` / `vllm bench serve` flags."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from gate.checks.serving import spec
from gate.worker import engines


def test_a_bare_spec_is_the_card_profile_served_by_vllm_on_cpu() -> None:
    assert spec.check({"model": "/models/qwen3"}) == {
        "model": "/models/qwen3",
        "backend": "vllm",
        "device": "cpu",
        "engine_args": {},
        "profile": "card",
        "rounds": 3,
        "num_prompts": 100,
        "concurrencies": [10],
        "reference_run": None,
    }


def test_the_sweep_doubles_concurrency_up_to_64_with_50_prompts_a_level() -> None:
    checked = spec.check({"model": "m/x", "profile": "sweep"})
    assert checked["concurrencies"] == [1, 2, 4, 8, 16, 32, 64]
    assert checked["num_prompts"] == 50
    assert spec.check({"model": "m/x", "profile": "sweep", "concurrencies": [1, 2]})["concurrencies"] == [1, 2]


@pytest.mark.parametrize("profile", ["card", "sweep"])
def test_a_checked_spec_checks_again_unchanged(profile: str) -> None:
    checked = spec.check({"model": "m/x", "profile": profile})
    assert spec.check(checked) == checked  # the worker checks the spec the server stored


def test_vllm_ascend_serves_on_the_npu() -> None:
    checked = spec.check({"model": "m/x", "backend": "vllm-ascend", "device": "npu:0,1"})
    assert (spec.device_kind(checked["device"]), spec.device_ids(checked["device"])) == ("npu", "0,1")
    assert spec.check({"model": "m/x", "backend": "vllm-ascend"})["device"] == "npu"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "the serving spec must be an object."),
        ({"model": "m/x", "speed": 1}, "the serving spec has unknown keys: speed."),
        ({"model": ""}, "model must name a model."),
        ({"model": "a b"}, "model must be a hub or ModelScope id (org/name) or a path, without spaces, ',' or '='."),
        ({"model": "m/x", "backend": "hf"}, "backend must be one of vllm, vllm-ascend, openai, not 'hf'."),
        ({"model": "m/x", "device": "gpu"}, "device must be cpu, cuda[:ids] or npu[:ids], not 'gpu'."),
        ({"model": "m/x", "device": "npu"}, "backend vllm does not serve on npu."),
        # the openai backend measures the worker's configured server: a spec cannot aim it anywhere
        (
            {"model": "m", "backend": "openai", "base_url": "http://10.0.0.1"},
            "the serving spec has unknown keys: base_url.",
        ),
        (
            {"model": "m", "backend": "openai", "engine_args": {"max_num_seqs": 1}},
            "engine_args do not apply to the openai backend: its server is already running.",
        ),
        ({"model": "m/x", "engine_args": {"port": 1}}, "engine_args.port is set by the worker, not by the spec."),
        (
            {"model": "m/x", "engine_args": {"Max-Len": 1}},
            "engine_args key 'Max-Len' must be a vLLM argument name such as max_model_len.",
        ),
        (
            {"model": "m/x", "engine_args": {"dtype": None}},
            "engine_args.dtype must be a string, number, boolean or object.",
        ),
        (
            {"model": "m/x", "engine_args": {"dtype": "a\nb"}},
            "engine_args.dtype must be at most 2000 printable characters.",
        ),
        ({"model": "m/x", "profile": "soak"}, "profile must be card or sweep, not 'soak'."),
        ({"model": "m/x", "rounds": 11}, "rounds must be an integer from 1 to 10, got 11."),
        ({"model": "m/x", "rounds": True}, "rounds must be an integer from 1 to 10, got True."),
        ({"model": "m/x", "num_prompts": 0}, "num_prompts must be an integer from 1 to 10000, got 0."),
        (
            {"model": "m/x", "concurrencies": [1]},
            "concurrencies belong to the sweep profile; the card profile runs at concurrency 10.",
        ),
        (
            {"model": "m/x", "profile": "sweep", "concurrencies": list(range(1, 10))},
            "concurrencies must be a list of 1 to 8 levels.",
        ),
        ({"model": "m/x", "profile": "sweep", "concurrencies": [2, 1]}, "concurrencies must rise, each level once."),
        ({"model": "m/x", "reference_run": 0}, f"reference_run must be an integer from 1 to {2**63 - 1}, got 0."),
    ],
)
def test_a_bad_spec_is_refused_in_one_sentence(raw: Any, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        spec.check(raw)
    assert str(refused.value) == message


def test_engine_args_become_vllm_serve_flags() -> None:
    flags = engines.engine_flags(
        {"max_model_len": 4096, "enforce_eager": True, "enable_prefix_caching": False, "gpu_memory_utilization": 0.9,
         "compilation_config": {"mode": 0}}
    )  # fmt: skip
    assert flags == [
        "--max-model-len", "4096", "--enforce-eager", "--no-enable-prefix-caching",
        "--gpu-memory-utilization", "0.9", "--compilation-config", '{"mode": 0}',
    ]  # fmt: skip


def test_the_card_profile_is_the_cards_table_as_bench_arguments() -> None:
    checked = spec.check({"model": "/m", "num_prompts": 30})
    args = spec.bench_args(checked, 10, "http://127.0.0.1:8000/v1/", "tiny", "/m", "/out", "round-1.json")
    pairs = dict(itertools.pairwise(args))
    assert pairs["--base-url"] == "http://127.0.0.1:8000"  # the benchmark appends the endpoint itself
    assert (pairs["--dataset-name"], pairs["--random-input-len"], pairs["--random-output-len"]) == (
        "random",
        "12",
        "128",
    )
    assert (pairs["--max-concurrency"], pairs["--num-warmups"], pairs["--num-prompts"]) == ("10", "10", "30")
    assert (pairs["--percentile-metrics"], pairs["--metric-percentiles"]) == ("ttft,tpot,itl,e2el", "50,90,99")
    assert "--ignore-eos" in args and "--save-result" in args
    assert (pairs["--result-dir"], pairs["--result-filename"]) == ("/out", "round-1.json")
