"""The smoke spec a run carries (runs.options): the model, how it is loaded, the prompts and the sampling (pure).

The defaults are the model card's "sample outputs": its four prompts through the chat template at temperature 0.7
and 256 tokens at most; whatever sampling the spec leaves unset comes from the model's generation_config.json, as
vLLM's `generation_config="auto"` does (`effective`).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gate.runs.options import CONTROL, check_model_ref

# openai asks the worker's own configured server (`gate worker --openai-base-url`): a spec names no address.
BACKENDS = ("hf", "vllm", "vllm-ascend", "openai")
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: the model's own (config.json's dtype)
DEVICE = re.compile(r"^(cpu|cuda(:\d{1,3}(,\d{1,3}){0,63})?|npu(:\d{1,3}(,\d{1,3}){0,63})?)$")
# Which device kinds each backend generates on; openai names the remote server's.
DEVICE_KINDS = {
    "hf": ("cpu", "cuda", "npu"),
    "vllm": ("cpu", "cuda"),
    "vllm-ascend": ("npu",),
    "openai": ("cpu", "cuda", "npu"),
}
ENGINE_ARG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ENGINE_ARGS = 50
MAX_VALUE_CHARS = 2000
# What the worker sets itself: the model and its precision come from the spec, a server from the worker.
RESERVED_ARGS = frozenset(
    {
        "model", "dtype", "base_url", "host", "port", "uds", "served_model_name", "api_key",
        "ssl_keyfile", "ssl_certfile", "root_path",
    }
)  # fmt: skip
# The model card's four prompts, verbatim.
CARD_PROMPTS = (
    "What is the capital of France?",
    "2+2等于多少?只需给出数字。",
    "根据我们之前的对话,我们讨论过的客户叫什么名字?",
    "编写一个 Python 函数来检查字符串是否为回文。",
)
MAX_PROMPTS = 32
MAX_PROMPT_CHARS = 8000
PROMPT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters other than tab and newline
DEFAULT_TEMPERATURE = 0.7  # the card's
DEFAULT_MAX_TOKENS = 256  # the card's
MAX_TEMPERATURE = 2.0
MAX_TOKENS = 32768  # a thinking model's whole reasoning budget (the qwen3-thinking profile's max_gen_toks)
MAX_TOP_K = 100_000
MAX_SEED = 2**32 - 1
SAMPLING_KEYS = ("temperature", "max_tokens", "top_p", "top_k", "seed")
# What vLLM's generation_config="auto" takes from generation_config.json when a request leaves it unset, and the
# neutral value when the file does not say either.
FROM_GENERATION_CONFIG = {
    "top_p": 1.0,
    "top_k": 0,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}  # vLLM 0.32's list (ModelConfig.get_diff_sampling_param), less temperature and max_new_tokens: the spec's
KEYS = {"model", "backend", "device", "dtype", "engine_args", "prompts", "sampling"}


def _int(value: Any, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}.")
    return value


def _float(value: Any, name: str, low: float, high: float, low_open: bool = False) -> float:
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or not (low < value if low_open else low <= value) or value > high:
        bounds = f"above {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
        raise ValueError(f"{name} must be a number {bounds}, got {value!r}.")
    return float(value)


def _engine_args(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError('engine_args must be an object such as {"max_model_len": 4096}.')
    if len(raw) > MAX_ENGINE_ARGS:
        raise ValueError(f"engine_args may hold at most {MAX_ENGINE_ARGS} arguments.")
    for name, value in raw.items():
        if not ENGINE_ARG.match(name):
            raise ValueError(f"engine_args key {name!r} must be an argument name such as max_model_len.")
        if name == "base_url":  # a run never names an address a worker would connect to
            raise ValueError("engine_args.base_url is not allowed: the openai backend uses the worker's server.")
        if name in RESERVED_ARGS:
            raise ValueError(f"engine_args.{name} is set by the worker or the spec, not by engine_args.")
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        if not isinstance(value, (str, int, float, bool)) or (isinstance(value, str) and not value):
            raise ValueError(f"engine_args.{name} must be a string, number, boolean or object.")
        if isinstance(value, str) and (len(value) > MAX_VALUE_CHARS or CONTROL.search(value)):
            raise ValueError(f"engine_args.{name} must be at most {MAX_VALUE_CHARS} printable characters.")
    return dict(raw)


def _prompts(raw: Any) -> list[str]:
    if raw is None:
        return list(CARD_PROMPTS)
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PROMPTS:
        raise ValueError(f"prompts must be a list of 1 to {MAX_PROMPTS} strings.")
    for i, prompt in enumerate(raw):
        if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompts[{i}] must be a non-blank string of at most {MAX_PROMPT_CHARS} characters.")
        if PROMPT_CONTROL.search(prompt):
            raise ValueError(f"prompts[{i}] holds a control character other than a tab or a newline.")
    return list(raw)


def _sampling(raw: Any) -> dict[str, Any]:
    chosen = {} if raw is None else raw
    if not isinstance(chosen, dict):
        raise ValueError('sampling must be an object such as {"temperature": 0.7, "max_tokens": 256}.')
    unknown = sorted(chosen.keys() - set(SAMPLING_KEYS))
    if unknown:
        raise ValueError(f"sampling has unknown keys: {', '.join(unknown)}; known: {', '.join(SAMPLING_KEYS)}.")
    top_p, top_k, seed = chosen.get("top_p"), chosen.get("top_k"), chosen.get("seed")
    temperature = chosen.get("temperature", DEFAULT_TEMPERATURE)
    return {
        "temperature": _float(temperature, "sampling.temperature", 0, MAX_TEMPERATURE),
        "max_tokens": _int(chosen.get("max_tokens", DEFAULT_MAX_TOKENS), "sampling.max_tokens", 1, MAX_TOKENS),
        "top_p": None if top_p is None else _float(top_p, "sampling.top_p", 0, 1, low_open=True),
        "top_k": None if top_k is None else _int(top_k, "sampling.top_k", 0, MAX_TOP_K),
        "seed": None if seed is None else _int(seed, "sampling.seed", 0, MAX_SEED),
    }


def check(spec: Any) -> dict[str, Any]:
    """The smoke spec with its defaults filled in, or a one-sentence ValueError."""
    if not isinstance(spec, dict):
        raise ValueError("the smoke spec must be an object.")
    unknown = sorted(spec.keys() - KEYS)
    if unknown:
        raise ValueError(f"the smoke spec has unknown keys: {', '.join(unknown)}.")
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("model must name a model.")
    try:
        check_model_ref(model)
    except ValueError as exc:
        raise ValueError(f"{exc}.") from None
    backend = spec.get("backend", "hf")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    device = spec.get("device", "npu" if backend == "vllm-ascend" else "cpu")
    if not isinstance(device, str) or not DEVICE.match(device):
        raise ValueError(f"device must be cpu, cuda[:ids] or npu[:ids], not {device!r}.")
    if device_kind(device) not in DEVICE_KINDS[backend]:
        raise ValueError(f"backend {backend} does not generate on {device_kind(device)}.")
    dtype = spec.get("dtype", "auto")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    engine_args = _engine_args(spec.get("engine_args") or {})
    if backend == "openai" and engine_args:
        raise ValueError("engine_args do not apply to the openai backend: its server is already running.")
    if backend == "openai" and dtype != "auto":
        raise ValueError("dtype does not apply to the openai backend: its server chose its own.")
    return {
        "model": model,
        "backend": backend,
        "device": device,
        "dtype": dtype,
        "engine_args": engine_args,
        "prompts": _prompts(spec.get("prompts")),
        "sampling": _sampling(spec.get("sampling")),
    }


def device_kind(device: str) -> str:
    """cpu, cuda or npu."""
    return device.split(":", 1)[0]


def device_ids(device: str) -> str | None:
    """The device ids a spec names ("0,1" of "npu:0,1"), or None for the worker's default."""
    return device.split(":", 1)[1] if ":" in device else None


def effective(sampling: dict[str, Any], generation_config: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters every backend generates with: the spec's, then for each one it leaves unset the model's
    generation_config.json (top_p, top_k, min_p and the penalties, as vLLM's generation_config="auto" reads
    them), else the neutral value. Temperature 0 is greedy decoding."""
    found = generation_config or {}
    chosen: dict[str, Any] = {"temperature": sampling["temperature"], "max_tokens": sampling["max_tokens"]}
    for key, neutral in FROM_GENERATION_CONFIG.items():
        value = sampling.get(key)
        if value is None:
            value = found.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            value = neutral
        chosen[key] = int(value) if isinstance(neutral, int) else float(value)
    if chosen["top_k"] < 0:  # vLLM's and transformers' older spelling of "no top-k"
        chosen["top_k"] = 0
    chosen["seed"] = sampling.get("seed")
    return chosen
