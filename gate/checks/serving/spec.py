"""The serving spec a run carries (runs.options), its profiles and their `vllm bench serve` arguments (pure).

A profile fixes what is measured (dataset, lengths, concurrency levels, warm-ups), so two runs of one profile are
comparable; the spec picks the model, how it is served, how many rounds and prompts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gate.runs.options import CONTROL, check_model_ref

# openai measures the worker's own configured server (`gate worker --openai-base-url`): a spec names no address,
# so a submitter cannot aim workers at internal services.
BACKENDS = ("vllm", "vllm-ascend", "openai")
PROFILES = ("card", "sweep")
DEVICE = re.compile(r"^(cpu|cuda(:\d{1,3}(,\d{1,3}){0,63})?|npu(:\d{1,3}(,\d{1,3}){0,63})?)$")
# Which device kinds each backend serves on; openai names the remote server's (what makes two runs comparable).
DEVICE_KINDS = {"vllm": ("cpu", "cuda"), "vllm-ascend": ("npu",), "openai": ("cpu", "cuda", "npu")}
ENGINE_ARG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ENGINE_ARGS = 50
MAX_VALUE_CHARS = 2000
# What the worker sets itself when it starts the server: a spec cannot move it elsewhere or rename the model.
RESERVED_ARGS = frozenset(
    {"model", "host", "port", "uds", "served_model_name", "api_key", "ssl_keyfile", "ssl_certfile", "root_path"}
)
MAX_ROUNDS = 10
DEFAULT_ROUNDS = 3
MAX_PROMPTS = 10_000
MAX_LEVELS = 8
MAX_CONCURRENCY = 1024
# The model card's serving table: random prompts of 12 tokens, 128 generated, 10 requests at a time.
INPUT_LEN = 12
OUTPUT_LEN = 128
CARD_CONCURRENCY = 10
SWEEP_LEVELS = (1, 2, 4, 8, 16, 32, 64)
DEFAULT_PROMPTS = {"card": 100, "sweep": 50}  # per level
SEED = 0  # the same prompts in every round and every run: only the timing differs
READY_CHECK_S = 120  # the benchmark's own wait for a first answer (an openai server gate did not start)
PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2el")
KEYS = {
    "model", "backend", "device", "engine_args", "profile", "rounds", "num_prompts", "concurrencies", "reference_run",
}  # fmt: skip


def _int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}.")
    return value


def _engine_args(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError('engine_args must be an object such as {"max_model_len": 4096}.')
    if len(raw) > MAX_ENGINE_ARGS:
        raise ValueError(f"engine_args may hold at most {MAX_ENGINE_ARGS} arguments.")
    for name, value in raw.items():
        if not ENGINE_ARG.match(name):
            raise ValueError(f"engine_args key {name!r} must be a vLLM argument name such as max_model_len.")
        if name in RESERVED_ARGS:
            raise ValueError(f"engine_args.{name} is set by the worker, not by the spec.")
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and not value):
            raise ValueError(f"engine_args.{name} must be a string, number, boolean or object.")
        if isinstance(value, str) and (len(value) > MAX_VALUE_CHARS or CONTROL.search(value)):
            raise ValueError(f"engine_args.{name} must be at most {MAX_VALUE_CHARS} printable characters.")
    return dict(raw)


def _concurrencies(raw: Any, profile: str) -> list[int]:
    if raw is None:
        return [CARD_CONCURRENCY] if profile == "card" else list(SWEEP_LEVELS)
    if profile == "card" and raw != [CARD_CONCURRENCY]:  # the card's own level: a checked spec checks again
        raise ValueError("concurrencies belong to the sweep profile; the card profile runs at concurrency 10.")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LEVELS:
        raise ValueError(f"concurrencies must be a list of 1 to {MAX_LEVELS} levels.")
    levels = [_int(level, "each concurrency", 1, MAX_CONCURRENCY) for level in raw]
    if levels != sorted(set(levels)):
        raise ValueError("concurrencies must rise, each level once.")
    return levels


def check(spec: Any) -> dict[str, Any]:
    """The serving spec with its defaults filled in, or a one-sentence ValueError."""
    if not isinstance(spec, dict):
        raise ValueError("the serving spec must be an object.")
    unknown = sorted(spec.keys() - KEYS)
    if unknown:
        raise ValueError(f"the serving spec has unknown keys: {', '.join(unknown)}.")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model must name a model.")
    try:
        check_model_ref(model)
    except ValueError as exc:
        raise ValueError(f"{exc}.") from None
    backend = spec.get("backend", "vllm")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    device = spec.get("device", "npu" if backend == "vllm-ascend" else "cpu")
    if not isinstance(device, str) or not DEVICE.match(device):
        raise ValueError(f"device must be cpu, cuda[:ids] or npu[:ids], not {device!r}.")
    if device_kind(device) not in DEVICE_KINDS[backend]:
        raise ValueError(f"backend {backend} does not serve on {device_kind(device)}.")
    engine_args = _engine_args(spec.get("engine_args") or {})
    if backend == "openai" and engine_args:
        raise ValueError("engine_args do not apply to the openai backend: its server is already running.")
    profile = spec.get("profile", "card")
    if profile not in PROFILES:
        raise ValueError(f"profile must be card or sweep, not {profile!r}.")
    reference_run = spec.get("reference_run")
    if reference_run is not None:
        _int(reference_run, "reference_run", 1, 2**63 - 1)
    return {
        "model": model,
        "backend": backend,
        "device": device,
        "engine_args": engine_args,
        "profile": profile,
        "rounds": _int(spec.get("rounds", DEFAULT_ROUNDS), "rounds", 1, MAX_ROUNDS),
        "num_prompts": _int(spec.get("num_prompts", DEFAULT_PROMPTS[profile]), "num_prompts", 1, MAX_PROMPTS),
        "concurrencies": _concurrencies(spec.get("concurrencies"), profile),
        "reference_run": reference_run,
    }


def device_kind(device: str) -> str:
    """cpu, cuda or npu: what a reference must share with a run to be comparable."""
    return device.split(":", 1)[0]


def device_ids(device: str) -> str | None:
    """The device ids a spec names ("0,1" of "npu:0,1"), or None for the worker's default."""
    return device.split(":", 1)[1] if ":" in device else None


def warmups(concurrency: int) -> int:
    """Warm-up requests before a level is measured: one full batch, so no measured request pays a first call."""
    return concurrency


def bench_args(
    checked: dict[str, Any],
    concurrency: int,
    base_url: str,
    served_model: str,
    tokenizer: str,
    result_dir: str,
    result_file: str,
) -> list[str]:
    """The `vllm bench serve` arguments for one round at one level of a checked spec."""
    return [
        "--backend", "openai",
        "--base-url", base_url.rstrip("/").removesuffix("/v1"),
        "--endpoint", "/v1/completions",
        "--model", served_model,
        "--tokenizer", tokenizer,
        "--dataset-name", "random",
        "--random-input-len", str(INPUT_LEN),
        "--random-output-len", str(OUTPUT_LEN),
        "--ignore-eos",  # every request generates the profile's 128 tokens, whatever the model samples
        "--num-prompts", str(checked["num_prompts"]),
        "--max-concurrency", str(concurrency),
        "--num-warmups", str(warmups(concurrency)),
        "--seed", str(SEED),
        "--ready-check-timeout-sec", str(READY_CHECK_S),
        "--percentile-metrics", ",".join(LATENCIES),
        "--metric-percentiles", ",".join(str(p) for p in PERCENTILES),
        "--disable-tqdm",
        "--save-result",
        "--result-dir", result_dir,
        "--result-filename", result_file,
    ]  # fmt: skip
