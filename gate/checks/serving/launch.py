"""The command lines of a serving check: the vLLM server with the spec's engine arguments, the readiness wait, and
`vllm bench serve` for one round (what the worker supervises; no process is started here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gate.checks.serving import spec
from gate.worker import engines
from gate.worker.config import WorkerConfig
from gate.worker.engines import OFFLINE_ENV
from gate.worker.process import Invocation

SERVED_MODEL = engines.SERVED_MODEL  # the name the benchmark asks for: the same in every run, whatever the model's path
HOST = engines.HOST
READY_LIMIT_S = 900.0  # a large model's download is done before; loading and warming it up are not


def device_env(checked: dict[str, Any], config: WorkerConfig) -> dict[str, str]:
    """The device selection and platform settings: the spec's ids, else the worker's own devices."""
    ids = spec.device_ids(checked["device"]) or ",".join(str(d) for d in config.devices)
    return engines.device_env(spec.device_kind(checked["device"]), ids)


def server(checked: dict[str, Any], model_path: str, config: WorkerConfig, port: int, folder: Path) -> Invocation:
    """vLLM's OpenAI server with the spec's engine arguments on a loopback port (a warm engine's command too)."""
    return engines.server(model_path, checked["engine_args"], device_env(checked, config), config, port, folder)


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
