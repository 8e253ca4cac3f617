"""One `vllm bench serve --save-result` JSON read into the figures a serving report keeps (pure).

The keys are vLLM's own (vllm/benchmarks/serve.py, with --percentile-metrics ttft,tpot,itl,e2el
--metric-percentiles 50,90,99), so a figure means what it means in vLLM's and vLLM-Ascend's CI. One figure is
added: a single request's decode rate, as the model card gives it (128 tokens / 0.546 s = 234.59 tok/s), beside the
aggregate output throughput (about concurrency times that).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gate.checks.serving.spec import LATENCIES, PERCENTILES

THROUGHPUTS = ("request_throughput", "output_throughput", "total_token_throughput")
STATISTICS = ("mean", "median", "p90", "p99")  # the median is p50
LATENCY_FIGURES = tuple(f"{stat}_{name}_ms" for name in LATENCIES for stat in STATISTICS)
FIGURES = ("completed", "failed", *THROUGHPUTS, *LATENCY_FIGURES, "per_request_decode_tok_s")
# the benchmark derives each throughput from the same duration; its float rounding stays far inside this
CONSISTENCY = 1e-6


def _number(result: Mapping[str, Any], key: str) -> float:
    value = result.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"the benchmark result's {key} is {value!r}, not a finite number >= 0.")
    return float(value)


def _count(result: Mapping[str, Any], key: str) -> int:
    value = result.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"the benchmark result's {key} is {value!r}, not a count.")
    return value


def _agrees(stated: float, derived: float) -> bool:
    return math.isclose(stated, derived, rel_tol=CONSISTENCY, abs_tol=1e-9)


def figures(result: Mapping[str, Any]) -> dict[str, float | int]:
    """The report's figures of one benchmark round, or a one-sentence ValueError for an impossible result."""
    completed, failed = _count(result, "completed"), _count(result, "failed")
    if completed == 0:
        raise ValueError(f"no benchmark request completed ({failed} failed).")
    duration, output_tokens = _number(result, "duration"), _count(result, "total_output_tokens")
    input_tokens = _count(result, "total_input_tokens")
    if duration <= 0:
        raise ValueError("the benchmark result's duration is 0 s.")
    found: dict[str, float | int] = {"completed": completed, "failed": failed}
    found |= {key: _number(result, key) for key in (*THROUGHPUTS, *LATENCY_FIGURES)}
    for key, amount in (
        ("request_throughput", completed),
        ("output_throughput", output_tokens),
        ("total_token_throughput", input_tokens + output_tokens),
    ):
        if not _agrees(float(found[key]), amount / duration):
            raise ValueError(f"the benchmark result's {key} does not match its counts over {duration:.3f} s.")
    for name in LATENCIES:
        ordered = [_number(result, f"p{p}_{name}_ms") for p in PERCENTILES]
        if ordered != sorted(ordered) or not _agrees(float(found[f"median_{name}_ms"]), ordered[0]):
            raise ValueError(f"the benchmark result's {name} percentiles are out of order.")
    mean_e2el_s = float(found["mean_e2el_ms"]) / 1000
    if mean_e2el_s <= 0:
        raise ValueError("the benchmark result's mean end-to-end latency is 0 ms.")
    found["per_request_decode_tok_s"] = output_tokens / completed / mean_e2el_s
    return found
