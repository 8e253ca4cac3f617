"""The probe spec a run carries (runs.options): checked with one-sentence errors, defaults filled in (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gate.checks.alignment import probes
from gate.runs.options import CONTROL, check_model_ref

BACKENDS = ("hf", "vllm", "vllm-ascend", "openai")
DTYPES = ("float32", "bfloat16", "float16")
MIN_TOP_K = 20  # the floor: top-5 overlap and the union cosine need a margin past the top few
MAX_TOP_K = 1000  # top lists travel as JSON: k entries per position
MAX_DEVICE_CHARS = 500  # a device name, or the URL of an OpenAI-compatible server
SIDE_KEYS = {"model", "backend", "dtype", "device", "engine_args"}


def _side(raw: Any, role: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f'{role} must be an object such as {{"model": "/models/qwen3"}}.')
    side = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
    unknown = sorted(side.keys() - SIDE_KEYS)
    if unknown:
        raise ValueError(f"{role} has unknown keys: {', '.join(unknown)}.")
    if not isinstance(side.get("model"), str) or not side["model"]:
        raise ValueError(f"{role}.model must name a model.")
    try:
        check_model_ref(side["model"])
    except ValueError as exc:
        raise ValueError(f"{role}.{exc}.") from None
    if side["backend"] not in BACKENDS:
        raise ValueError(f"{role}.backend must be one of {', '.join(BACKENDS)}, not {side['backend']!r}.")
    if side["dtype"] not in DTYPES:
        raise ValueError(f"{role}.dtype must be one of {', '.join(DTYPES)}, not {side['dtype']!r}.")
    device = side["device"]
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_CHARS or CONTROL.search(device):
        raise ValueError(f"{role}.device must be a device name or URL of at most {MAX_DEVICE_CHARS} characters.")
    if not isinstance(side["engine_args"], dict):
        raise ValueError(f"{role}.engine_args must be an object.")
    if "base_url" in side["engine_args"]:  # a run never names an address a worker would connect to
        raise ValueError(f"{role}.engine_args.base_url is not allowed: the openai backend uses the worker's server.")
    return side


def _probes(raw: Any) -> dict[str, Any]:
    """The probe set, checked without reading any file (a GSM8K folder is the worker's)."""
    chosen = raw or {"set": "card"}
    if not isinstance(chosen, dict):
        raise ValueError('probes must be an object such as {"set": "card"}.')
    unknown = sorted(chosen.keys() - {"set", "n", "texts", "dir"})
    if unknown:
        raise ValueError(f"probes has unknown keys: {', '.join(unknown)}.")
    name = chosen.get("set", "card")
    if name == "texts":
        probes.user_texts(chosen.get("texts"))
    elif name == "gsm8k":
        n = chosen.get("n", probes.GSM8K_DEFAULT_N)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= probes.MAX_TEXTS:
            raise ValueError(f"probes.n must be between 1 and {probes.MAX_TEXTS}, got {n!r}.")
    elif name != "card":
        raise ValueError(f"probes.set must be card, gsm8k or texts, not {name!r}.")
    return chosen


def check(spec: Any) -> dict[str, Any]:
    """The probe spec with its defaults filled in, or a one-sentence ValueError."""
    if not isinstance(spec, dict):
        raise ValueError("the alignment spec must be an object.")
    unknown = sorted(spec.keys() - {"candidate", "reference", "precisions", "probes", "top_k"})
    if unknown:
        raise ValueError(f"the alignment spec has unknown keys: {', '.join(unknown)}.")
    candidate = _side(
        spec.get("candidate"), "candidate", {"backend": "hf", "dtype": "float32", "device": "cpu", "engine_args": {}}
    )
    reference_defaults = {"model": candidate["model"], "backend": "hf", "dtype": "float32", "device": "cpu"}
    reference = _side(spec.get("reference") or {}, "reference", {**reference_defaults, "engine_args": {}})
    precisions = spec.get("precisions")
    if precisions is not None and (
        not isinstance(precisions, list)
        or len(precisions) != 2
        or "float32" not in precisions
        or len(set(precisions)) != 2
        or not set(precisions) <= set(DTYPES)
    ):
        raise ValueError('precisions must be ["float32", "bfloat16"] or ["float32", "float16"].')
    top_k = spec.get("top_k", MIN_TOP_K)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not MIN_TOP_K <= top_k <= MAX_TOP_K:
        raise ValueError(f"top_k must be an integer from {MIN_TOP_K} to {MAX_TOP_K}, got {top_k!r}.")
    return {
        "candidate": candidate,
        "reference": reference,
        "precisions": precisions,
        "probes": _probes(spec.get("probes")),
        "top_k": top_k,
    }
