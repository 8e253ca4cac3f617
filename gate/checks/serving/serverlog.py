"""What a vLLM server's log says about its start: model load time and memory, KV cache, engine start (pure).

Each figure is the first line that states it (a tensor-parallel server repeats them once per rank); a figure the
log lacks is None, since platforms word and log these differently.
"""

from __future__ import annotations

import re
from typing import TypedDict


class ServerFigures(TypedDict):
    model_load_s: float | None
    model_memory_gib: float | None
    kv_cache_gib: float | None
    kv_cache_tokens: int | None
    engine_init_s: float | None


NUMBER = r"(\d+(?:\.\d+)?)"
# vLLM's GPU model runner: "Model loading took 14.9 GiB memory and 2.44 seconds"
MODEL_LOADING = re.compile(rf"Model loading took {NUMBER} GiB memory and {NUMBER} seconds")
# vLLM-Ascend's NPU model runner (and vLLM's older ones) give the memory alone, in GiB though labelled GB
MODEL_WEIGHTS_MEMORY = re.compile(rf"Loading model weights took {NUMBER} GB")
# every platform's weight loader (vLLM's CPU build gives no memory line)
WEIGHTS_LOADED = re.compile(rf"Loading weights took {NUMBER} seconds")
KV_AVAILABLE = re.compile(rf"Available KV cache memory: {NUMBER} GiB")
KV_CPU = re.compile(rf"(?:Explicitly|Auto) set \({NUMBER}/{NUMBER}\) GiB for KV cache")
KV_TOKENS = re.compile(r"KV cache size: ([\d,]+) tokens")
ENGINE_INIT = re.compile(rf"init engine \(profile, create kv cache, warmup model\) took {NUMBER} s")
VERSIONS = (
    re.compile(r"vLLM API server version (\S+)"),
    re.compile(r"Initializing a V1 LLM engine \(v(\S+?)\)"),
)


def _first(pattern: re.Pattern[str], log: str, group: int = 1) -> float | None:
    match = pattern.search(log)
    return float(match.group(group)) if match else None


def read(log: str) -> ServerFigures:
    """The server's start-up figures from its log."""
    loading = MODEL_LOADING.search(log)
    tokens = KV_TOKENS.search(log)
    return {
        "model_load_s": float(loading.group(2)) if loading else _first(WEIGHTS_LOADED, log),
        "model_memory_gib": float(loading.group(1)) if loading else _first(MODEL_WEIGHTS_MEMORY, log),
        "kv_cache_gib": _first(KV_AVAILABLE, log) if KV_AVAILABLE.search(log) else _first(KV_CPU, log),
        "kv_cache_tokens": int(tokens.group(1).replace(",", "")) if tokens else None,
        "engine_init_s": _first(ENGINE_INIT, log),
    }


def version(log: str) -> str | None:
    """The vLLM version the server announces, e.g. 0.32.0."""
    for pattern in VERSIONS:
        if match := pattern.search(log):
            return match.group(1)
    return None
