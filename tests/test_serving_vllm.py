"""The serving check's processes against vLLM's real CPU server of the tiny Qwen3 (marked vllm: GATE_VLLM_PYTHON):
the server as the worker starts it, its readiness wait, the card profile and a short sweep through
`vllm bench serve`, on one server start (a slowed server is tests/test_serving_e2e.py's)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.checks.serving import bench, launch, ready, serverlog, spec
from gate.worker.config import WorkerConfig
from gate.worker.process import Evaluation
from tests.processes import free_port

pytestmark = pytest.mark.vllm
ROOT = Path(__file__).resolve().parents[1]
ENGINE_ARGS = {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}
PROMPTS = 20


class Served:
    """A running vLLM server as the worker starts it, and what it serves."""

    def __init__(self, checked: dict[str, Any], model: Path, config: WorkerConfig, folder: Path) -> None:
        self.checked, self.model, self.config, self.folder = checked, model, config, folder
        port = free_port()
        self.base_url = f"http://{launch.HOST}:{port}"
        self.evaluation = Evaluation(
            launch.server(checked, str(model), config, port, folder / "server"), folder / "server.log"
        )
        waiter = Evaluation(
            launch.ready(self.base_url, self.evaluation.process.pid, folder / "ready"), folder / "ready.log"
        )
        assert waiter.wait() == ready.READY, self.evaluation.log_tail

    def round(self, concurrency: int, name: str, **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """One `vllm bench serve` round: the benchmark's own JSON, and the figures read from it."""
        checked = {**self.checked, **changes}
        result = self.folder / "results" / f"{name}.json"
        invocation = launch.bench(
            checked, concurrency, self.base_url, launch.SERVED_MODEL, str(self.model), self.config, result
        )
        process = Evaluation(invocation, self.folder / f"{name}.log")
        assert process.wait() == 0, process.log_tail
        raw: dict[str, Any] = json.loads(result.read_text())
        return raw, bench.figures(raw)

    def stop(self) -> str:
        self.evaluation.stop(10.0)
        return (self.folder / "server.log").read_text()


@pytest.fixture(scope="module")
def config() -> WorkerConfig:
    python = os.environ.get("GATE_VLLM_PYTHON")
    assert python and Path(python).exists(), "set GATE_VLLM_PYTHON (make test-vllm builds the environment)"
    # one OpenMP thread: the two cores are the server's and the benchmark client's
    return WorkerConfig(backend="vllm", python=python, extra_env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


def serve(tiny_model: Path, config: WorkerConfig, folder: Path) -> Served:
    checked = spec.check({"model": str(tiny_model), "engine_args": ENGINE_ARGS, "num_prompts": PROMPTS})
    return Served(checked, tiny_model, config, folder)


@pytest.fixture(scope="module")
def measured(
    tiny_model: Path, config: WorkerConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The card profile (one round) and a sweep of concurrency 1 and 2 on one server, then its log."""
    served = serve(tiny_model, config, tmp_path_factory.mktemp("serving"))
    try:
        found: dict[str, Any] = {"card": served.round(10, "card")}
        sweep = spec.check({**served.checked, "profile": "sweep", "concurrencies": [1, 2], "num_prompts": 10})
        found["sweep"] = [served.round(level, f"sweep-c{level}", **sweep) for level in sweep["concurrencies"]]
    finally:
        found["log"] = served.stop()
    yield found


def test_the_card_profile_reports_the_benchmarks_own_figures(measured: dict[str, Any]) -> None:
    raw, figures = measured["card"]
    assert (raw["max_concurrency"], raw["num_prompts"], raw["completed"], raw["failed"]) == (10, PROMPTS, PROMPTS, 0)
    assert raw["total_output_tokens"] == PROMPTS * spec.OUTPUT_LEN  # --ignore-eos: 128 tokens each
    for key in bench.FIGURES[:-1]:
        assert figures[key] == raw[key]
    assert figures["per_request_decode_tok_s"] == pytest.approx(spec.OUTPUT_LEN / (raw["mean_e2el_ms"] / 1000))
    # ten requests at a time: the aggregate is several times one request's rate
    assert figures["output_throughput"] > 3 * figures["per_request_decode_tok_s"]


def test_the_sweep_measures_each_level(measured: dict[str, Any]) -> None:
    (raw1, one), (raw2, two) = measured["sweep"]
    assert (raw1["max_concurrency"], raw2["max_concurrency"]) == (1, 2)
    assert one["completed"] == two["completed"] == 10
    # aggregate over one request's rate = requests in flight on average (Little's law), whatever the machine's
    # speed: comparing the levels' throughputs instead failed on a loaded two-core machine (412 against 417 tok/s)
    in_flight = [level["output_throughput"] / level["per_request_decode_tok_s"] for level in (one, two)]
    assert in_flight[0] == pytest.approx(1, rel=0.15)
    assert 1.5 < in_flight[1] <= 2 * 1.15, in_flight


def test_the_servers_log_gives_its_start_up_figures(measured: dict[str, Any]) -> None:
    found = serverlog.read(measured["log"])
    assert found["kv_cache_gib"] == 1.0  # VLLM_CPU_KVCACHE_SPACE=1, set by the worker on CPU
    assert found["kv_cache_tokens"] and found["kv_cache_tokens"] > 512
    assert found["model_load_s"] is not None and found["engine_init_s"] is not None
    assert serverlog.version(measured["log"]) == "0.32.0"
