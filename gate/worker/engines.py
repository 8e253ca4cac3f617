"""The environment every engine subprocess starts with, whatever the check: offline, and the card's NPU settings;
and vLLM's OpenAI-compatible server as a command line (the serving check's server and a worker's warm engine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gate.worker.config import WorkerConfig
from gate.worker.process import Invocation

# vLLM-Ascend, as in the model card's adaptation runs: the task queue and expandable segments make NPU memory
# behave, and devices are selected for both torch_npu and vLLM-Ascend.
ASCEND_ENV = {"TASK_QUEUE_ENABLE": "1", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SERVED_MODEL = "gate-served"  # the name clients ask for: the same in every run, whatever the model's path
HOST = "127.0.0.1"  # the server is the worker's own; nothing else should reach it
CPU_KV_CACHE_GIB = "1"  # vLLM's CPU build sizes its KV cache from this, and refuses to start on a small host without it


def device_env(kind: str, ids: str) -> dict[str, str]:
    """The device selection and platform settings of a server on device kind cpu, cuda or npu ("" ids: all)."""
    if kind == "npu":  # as the model card serves: export VLLM_ASCEND_RT_DEVICES=0, the task queue, segments
        return {**ASCEND_ENV, **({"ASCEND_RT_VISIBLE_DEVICES": ids, "VLLM_ASCEND_RT_DEVICES": ids} if ids else {})}
    if kind == "cuda":
        return {"CUDA_VISIBLE_DEVICES": ids} if ids else {}
    return {"VLLM_CPU_KVCACHE_SPACE": CPU_KV_CACHE_GIB}


def engine_flags(engine_args: dict[str, Any]) -> list[str]:
    """The engine arguments as `vllm serve` flags: max_model_len=512 -> --max-model-len 512; booleans as
    --flag / --no-flag (vLLM's BooleanOptionalAction); objects as JSON."""
    flags: list[str] = []
    for name, value in engine_args.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return flags


def server(
    model_path: str, engine_args: dict[str, Any], devices: dict[str, str], config: WorkerConfig, port: int, folder: Path
) -> Invocation:
    """vLLM's OpenAI server (the card's `python3 -m vllm.entrypoints.openai.api_server`, which also runs under the
    CPU build's distribution name) on a loopback port, with the device settings of `device_env`."""
    argv = [
        config.python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--served-model-name", SERVED_MODEL, "--host", HOST, "--port", str(port),
        *engine_flags(engine_args),
    ]  # fmt: skip
    # the worker's own settings (extra_env) win: an operator may size the CPU KV cache differently
    return Invocation(argv, {**OFFLINE_ENV, **devices, **config.extra_env}, folder)
