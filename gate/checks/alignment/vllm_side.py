"""One side of an alignment probe on vLLM: the logprobs of given token ids, from the engine or a running server.

Backends `vllm` and `vllm-ascend` load the model in this process (`vllm.LLM`, one code path: the card's
environment is set by the caller from `environment()`); backend `openai` asks a running vLLM OpenAI-compatible
server. Both are fed the token ids themselves (teacher forcing), never text, and answer in token ids, so
positions map to ids without detokenizing.

What vLLM returns (0.32.0, read on its CPU build with the tiny Qwen3):
- The first prompt position has no prediction: the engine's `prompt_logprobs[0]` is None, the server's
  `prompt_logprobs[0]` is null.
- Every later position is {token_id: Logprob(logprob, rank, decoded_token)}: the actual token first, with `rank`
  its 1-based place in the whole vocabulary (e.g. 1304 of 2048), then the top-k with ranks 1..k; k entries when
  the actual token is among them, k + 1 otherwise. The generated token's `logprobs[0]` has the same shape.
- Special tokens inside a text (`<|im_end|>`, `<|im_start|>`) are scored like any other id, decoded_token
  '<|im_end|>': the ids given are the ids scored.
- Logprobs are the raw model's: `logprobs_mode="raw_logprobs"` (0.32's default, set explicitly below) is the
  log-softmax of the logits before temperature, penalties and top-k/top-p; prompt logprobs never see those.
- The server's `prompt_logprobs` request field answers with the same dicts keyed by token id (JSON strings);
  `echo` + `logprobs` keys `top_logprobs` by decoded text, where two tokens with one spelling collide, unless
  `return_tokens_as_token_ids` makes the keys "token_id:<id>". So: prompt_logprobs for the prompt, and the
  generated token's top_logprobs with return_tokens_as_token_ids for the next token. Logprobs of -inf arrive as
  -9999.0.

gate.checks.alignment.sides runs this in a subprocess of the side's environment; vllm.LLM starts worker processes
that re-import the main module, so that module keeps its `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gate.checks.alignment.record import Position, SideRecord, TextRecord
from gate.worker.engines import ASCEND_ENV, OFFLINE_ENV

ENGINE_BACKENDS = ("vllm", "vllm-ascend")
SERVER_TIMEOUT_S = 300.0  # one request scores a whole text; a long text on a busy server takes a while
CPU_KV_CACHE_GIB = "1"  # vLLM's CPU build reserves 4 GiB by default and refuses to start on small machines


class SideError(RuntimeError):
    """The side could not produce its record."""


# One position's candidates as read from vLLM: token id -> (logprob, rank); rank None where not given.
Candidates = Mapping[int, tuple[float, int | None]]


def environment(backend: str, device: str) -> dict[str, str]:
    """The environment of a side's subprocess: offline, and the card's device variables for its backend."""
    env = dict(OFFLINE_ENV)
    kind, _, ids = device.partition(":")
    if backend == "vllm-ascend":
        if kind != "npu":
            raise ValueError(f"backend vllm-ascend runs on an NPU (device npu:0 or npu:0,1), not {device!r}")
        env.update(ASCEND_ENV)
        if ids:
            env["ASCEND_RT_VISIBLE_DEVICES"] = env["VLLM_ASCEND_RT_DEVICES"] = _device_ids(ids, device)
    elif backend == "vllm":
        if kind == "cpu" and not ids:
            env["VLLM_CPU_KVCACHE_SPACE"] = CPU_KV_CACHE_GIB
        elif kind == "cuda":
            if ids:
                env["CUDA_VISIBLE_DEVICES"] = _device_ids(ids, device)
        else:
            raise ValueError(f"backend vllm runs on cpu or cuda (cuda:0 or cuda:0,1), not {device!r}")
    elif backend != "openai":  # the server's own environment is its operator's
        raise ValueError(f"unknown vLLM backend {backend!r}: vllm, vllm-ascend or openai")
    return env


def _device_ids(ids: str, device: str) -> str:
    parts = ids.split(",")
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"device {device!r} names its cards by number, e.g. npu:0,1")
    return ",".join(parts)


def _best_first(candidates: Candidates, top_k: int) -> list[list[float]]:
    """The top_k candidates, best first: by rank where vLLM gives it, else by logprob (ties by token id)."""
    order = sorted(candidates.items(), key=lambda item: (item[1][1] or 0, -item[1][0], item[0]))
    return [[token, logprob] for token, (logprob, _) in order[:top_k]]


def positions(
    token_ids: Sequence[int],
    kind: str,
    prompt: Sequence[Candidates | None],
    next_token: Candidates | None,
    top_k: int,
) -> list[Position]:
    """Positions from vLLM's prompt logprobs (one per prompt token, the first None) and, for a next_token text,
    the logprobs of the one generated token."""
    if len(prompt) != len(token_ids):
        raise SideError(f"vLLM scored {len(prompt)} positions of a {len(token_ids)}-token text")
    if token_ids and prompt[0] is not None:
        raise SideError("vLLM gave a prediction for the first token, which has none")
    out: list[Position] = []
    for j, token in enumerate(token_ids[1:], start=1):
        candidates = prompt[j]
        if candidates is None or token not in candidates:
            raise SideError(f"vLLM gave no logprob for token {token} at position {j}")
        if len(candidates) < top_k:
            raise SideError(f"vLLM gave {len(candidates)} candidates at position {j}, fewer than top_k {top_k}")
        out.append({"token": token, "logprob": candidates[token][0], "top": _best_first(candidates, top_k)})
    if kind == "next_token":
        if next_token is None or len(next_token) < top_k:
            raise SideError(f"vLLM gave fewer than top_k {top_k} next-token candidates")
        out.append({"token": -1, "logprob": None, "top": _best_first(next_token, top_k)})
    return out


def engine_candidates(logprobs: Mapping[int, Any] | None) -> Candidates | None:
    """vLLM's {token_id: Logprob(logprob, rank, decoded_token)} as plain numbers."""
    if logprobs is None:
        return None
    return {int(token): (float(lp.logprob), lp.rank) for token, lp in logprobs.items()}


def server_candidates(logprobs: Mapping[str, Any] | None) -> Candidates | None:
    """A server's prompt_logprobs entry, {"<token_id>": {"logprob", "rank", "decoded_token"}}, as plain numbers."""
    if logprobs is None:
        return None
    try:
        return {int(token): (float(lp["logprob"]), lp.get("rank")) for token, lp in logprobs.items()}
    except (TypeError, ValueError, KeyError) as exc:
        raise SideError(f"the server's prompt_logprobs entry is not {{token_id: {{logprob, rank}}}}: {exc}") from exc


def server_next_token(logprobs: Mapping[str, Any] | None) -> Candidates | None:
    """The generated token's top_logprobs, {"token_id:<id>": logprob} (return_tokens_as_token_ids)."""
    if logprobs is None:
        return None
    out: dict[int, tuple[float, int | None]] = {}
    for key, logprob in logprobs.items():
        prefix, _, token = key.partition(":")
        if prefix != "token_id" or not token.isdigit():
            raise SideError(f"the server named a token {key!r}, not token_id:<id>: is return_tokens_as_token_ids on?")
        out[int(token)] = (float(logprob), None)
    return out


def completion_request(model: str, token_ids: Sequence[int], top_k: int) -> dict[str, Any]:
    """The /v1/completions body scoring token_ids: prompt logprobs by id, and the next token's top_k."""
    return {
        "model": model,
        "prompt": list(token_ids),
        "max_tokens": 1,
        "temperature": 0,
        "prompt_logprobs": top_k,
        "logprobs": top_k,
        "return_tokens_as_token_ids": True,
    }


def parse_completion(answer: Any, token_ids: Sequence[int], kind: str, top_k: int) -> list[Position]:
    """Positions from a server's /v1/completions answer to completion_request()."""
    try:
        choice = answer["choices"][0]
        prompt = [server_candidates(entry) for entry in choice["prompt_logprobs"]]
        top_logprobs = choice["logprobs"]["top_logprobs"]
        next_token = server_next_token(top_logprobs[0]) if top_logprobs else None
    except (TypeError, KeyError, IndexError) as exc:
        raise SideError(f"the server's answer has no choices[0].prompt_logprobs and logprobs: {exc!r}") from exc
    return positions(token_ids, kind, prompt, next_token, top_k)


def _text(text: dict[str, Any], found: list[Position]) -> TextRecord:
    return {"name": text["name"], "kind": text["kind"], "token_ids": text["token_ids"], "positions": found}


def _record(spec: dict[str, Any], texts: list[TextRecord]) -> SideRecord:
    return {
        "backend": spec["backend"],
        "model": spec["model"],
        "dtype": spec["dtype"],
        "device": spec["device"],
        "top_k": spec["top_k"],
        "full_logits": False,
        "tokenizer_fingerprint": "",
        "texts": texts,
    }


def engine_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """vllm.LLM's arguments: the spec's engine args, then what a probe needs."""
    args = dict(spec["engine_args"])
    return {
        **args,
        "model": spec["model"],
        "dtype": spec["dtype"],
        # vLLM refuses a request for more than max_logprobs (default 20); the actual token is not counted
        "max_logprobs": max(int(args.get("max_logprobs", 0)), spec["top_k"]),
        # the default in 0.32, set so that a changed default or raw_logits cannot slip in: logprobs of the model's
        # own distribution. (Prompt logprobs skip the prefix cache by themselves: every position is computed.)
        "logprobs_mode": "raw_logprobs",
    }


def run_engine(spec: dict[str, Any]) -> SideRecord:
    """Score every text with an in-process vLLM engine."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(**engine_kwargs(spec))
    top_k = spec["top_k"]
    params = SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=top_k, logprobs=top_k)
    prompts = [TokensPrompt(prompt_token_ids=list(text["token_ids"])) for text in spec["texts"]]
    outputs = llm.generate(prompts, params, use_tqdm=False)
    texts: list[TextRecord] = []
    for text, output in zip(spec["texts"], outputs, strict=True):
        prompt = [engine_candidates(entry) for entry in output.prompt_logprobs or []]
        generated = output.outputs[0].logprobs
        next_token = engine_candidates(generated[0]) if generated else None
        texts.append(_text(text, positions(text["token_ids"], text["kind"], prompt, next_token, top_k)))
    return _record(spec, texts)


def run_server(spec: dict[str, Any]) -> SideRecord:
    """Score every text on a running vLLM OpenAI-compatible server (engine_args: base_url, served_model_name)."""
    import httpx

    base_url = str(spec["engine_args"].get("base_url") or "").rstrip("/")
    if not base_url:
        raise SideError("backend openai needs engine_args.base_url, the server's address")
    model = str(spec["engine_args"].get("served_model_name") or spec["model"])
    url = f"{base_url}/v1/completions" if not base_url.endswith("/v1") else f"{base_url}/completions"
    texts: list[TextRecord] = []
    with httpx.Client(timeout=SERVER_TIMEOUT_S) as client:
        for text in spec["texts"]:
            body = completion_request(model, text["token_ids"], spec["top_k"])
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                raise SideError(f"the vLLM server at {base_url} did not answer: {exc}") from exc
            if response.status_code != 200:
                raise SideError(f"the vLLM server answered {response.status_code}: {response.text[:300]}")
            try:
                answer = response.json()
            except ValueError as exc:
                raise SideError(f"the vLLM server at {base_url} answered something other than JSON") from exc
            found = parse_completion(answer, text["token_ids"], text["kind"], spec["top_k"])
            texts.append(_text(text, found))
    return _record(spec, texts)


def run(spec: dict[str, Any]) -> SideRecord:
    """The side's record: per text and position, the actual token's logprob and the top_k alternatives."""
    # a vLLM side with a base_url is the worker's warm engine (a run's spec may not name one: spec.check)
    if spec["backend"] == "openai" or spec["engine_args"].get("base_url"):
        return run_server(spec)
    if spec["backend"] in ENGINE_BACKENDS:
        return run_engine(spec)
    raise SideError(f"unknown vLLM backend {spec['backend']!r}: vllm, vllm-ascend or openai")
