"""The command lines of a serving check: the vLLM server with the spec's engine arguments, the readiness wait, and
`vllm bench serve` for one round (what the worker supervises; no process is started here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gate.checks.serving import spec
from gate.worker.config import WorkerConfig
from gate.worker.engines import ASCEND_ENV, OFFLINE_ENV
from gate.worker.process import Invocation

SERVED_MODEL = "gate-served"  # the name the benchmark asks for: the same in every run, whatever the model's path
HOST = "127.0.0.1"  # the server is the worker's own; nothing else should reach it
CPU_KV_CACHE_GIB = "1"  # vLLM's CPU build sizes its KV cache from this, and refuses to start on a small host without it
READY_LIMIT_S = 900.0  # a large model's download is done before; loading and warming it up are not


def device_env(checked: dict[str, Any], config: WorkerConfig) -> dict[str, str]:
    """The device selection and platform settings: the spec's ids, else the worker's own devices."""
    ids = spec.device_ids(checked["device"]) or ",".join(str(d) for d in config.devices)
    kind = spec.device_kind(checked["device"])
    if kind == "npu":  # as the model card serves: export VLLM_ASCEND_RT_DEVICES=0, the task queue, segments
        return {**ASCEND_ENV, **({"ASCEND_RT_VISIBLE_DEVICES": ids, "VLLM_ASCEND_RT_DEVICES": ids} if ids else {})}
    if kind == "cuda":
        return {"CUDA_VISIBLE_DEVICES": ids} if ids else {}
    return {"VLLM_CPU_KVCACHE_SPACE": CPU_KV_CACHE_GIB}


def server(checked: dict[str, Any], model_path: str, config: WorkerConfig, port: int, folder: Path) -> Invocation:
    """vLLM's OpenAI server (the card's `python3 -m vllm.entrypoints.openai.api_server`, which also runs under the
    CPU build's distribution name) on a loopback port."""
    argv = [
        config.python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--served-model-name", SERVED_MODEL, "--host", HOST, "--port", str(port),
        *spec.engine_flags(checked["engine_args"]),
    ]  # fmt: skip
    # the worker's own settings (extra_env) win: an operator may size the CPU KV cache differently
    env = {**OFFLINE_ENV, **device_env(checked, config), **config.extra_env}
    return Invocation(argv, env, folder)


def ready(base_url: str, pid: int, folder: Path) -> Invocation:
    """The wait for the server's /health, in the worker's own interpreter."""
    argv = [sys.executable, "-m", "gate.checks.serving.ready", f"{base_url}/health", str(pid), str(READY_LIMIT_S)]
    return Invocation(argv, {}, folder)


def bench(
    checked: dict[str, Any],
    concurrency: int,
    base_url: str,
    served_model: str,
    tokenizer: str,
    config: WorkerConfig,
    result: Path,
) -> Invocation:
    """One round of `vllm bench serve` at one level, writing its result JSON to `result`."""
    args = spec.bench_args(checked, concurrency, base_url, served_model, tokenizer, str(result.parent), result.name)
    argv = [config.python, "-m", "vllm.entrypoints.cli.main", "bench", "serve", *args]
    return Invocation(argv, {**OFFLINE_ENV, **config.extra_env}, result.parent / f"{result.stem}-process")
