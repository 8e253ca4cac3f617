"""The lm-eval invocation per backend: an argument list (never a shell line) and its environment.

Run options arrive validated (gate.runs.options); this module re-validates them, because a worker trusts
no server input it turns into a command line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gate.checks.accuracy import code_tasks
from gate.runs.options import CODE_EXECUTING_TASKS, ModelArgs, RunOptions, check_model_ref, check_task
from gate.worker.config import ClaimedRun, WorkerConfig
from gate.worker.engines import ASCEND_ENV, OFFLINE_ENV, SERVED_MODEL
from gate.worker.process import Invocation

# generate_until tasks with one request per document, checked by the driver, and their folder in lm-eval's tasks:
# the driver indexes only that folder (indexing all of lm-eval's tasks costs 15 s of every run's start)
SHARDED_TASKS = {"gsm8k": "gsm8k"}


class RefusedRun(ValueError):
    """The run asks for something this worker does not allow: the user's error, never retried."""


def _join(args: dict[str, Any]) -> str:
    """lm-eval's k=v,k=v; values were validated free of ',' and '='."""
    parts = []
    for key, value in args.items():
        if value is None:
            continue
        text = str(value)
        if "," in text or "=" in text:
            raise RefusedRun(f"model argument {key} contains ',' or '='")
        parts.append(f"{key}={text}")
    return ",".join(parts)


def engine_args(backend: str, args: ModelArgs, config: WorkerConfig) -> dict[str, Any]:
    """The vLLM engine's arguments of a run (None: vLLM's default), in lm-eval's model and a warm server alike."""
    ascend = backend == "vllm-ascend"
    return {
        "revision": args.revision,
        "tensor_parallel_size": args.tensor_parallel_size or max(len(config.devices), 1),
        "dtype": args.dtype or ("bfloat16" if ascend else "auto"),
        "gpu_memory_utilization": args.gpu_memory_utilization or 0.9,
        "max_model_len": args.max_model_len,
        "enforce_eager": args.enforce_eager if args.enforce_eager is not None else (True if ascend else None),
        "trust_remote_code": args.trust_remote_code,
    }


def model_args(
    backend: str, model_path: str, args: ModelArgs, config: WorkerConfig, chat: bool = False
) -> tuple[str, str]:
    """(lm-eval --model, --model_args) for a backend; a vLLM backend on the worker's warm engine asks its server
    (`local-chat-completions` when the run applies a chat template), with the model's folder as tokenizer."""
    thinking = {"enable_thinking": args.enable_thinking, "think_end_token": args.think_end_token}
    if backend in ("vllm", "vllm-ascend") and config.warm_base_url is not None:
        endpoint = "/v1/chat/completions" if chat else "/v1/completions"
        return "local-chat-completions" if chat else "local-completions", _join(
            {
                "model": SERVED_MODEL,
                "base_url": config.warm_base_url.rstrip("/") + endpoint,
                "tokenizer": args.tokenizer or model_path,
                "tokenizer_backend": "huggingface",
                # token ids, as lm-eval's vllm model sends: the context is cut to max_length less the generation
                "tokenized_requests": not chat,
                "num_concurrent": args.num_concurrent or 8,
                "max_retries": 3,
                "max_length": args.max_model_len,
                "revision": args.revision,
                "trust_remote_code": args.trust_remote_code,
                "think_end_token": args.think_end_token,
            }
        )
    if backend == "hf":
        return "hf", _join(
            {
                "pretrained": model_path,
                "revision": args.revision,
                "dtype": args.dtype or "auto",
                "trust_remote_code": args.trust_remote_code,
                **thinking,
            }
        )
    if backend in ("vllm", "vllm-ascend"):
        return "vllm", _join({"pretrained": model_path, **engine_args(backend, args, config), **thinking})
    if backend == "openai":
        base_url = config.openai_base_url
        if base_url is None:
            raise RefusedRun("backend openai needs a server: this worker has none (gate worker --openai-base-url)")
        tokenizer = args.tokenizer or config.openai_tokenizer
        return "local-completions", _join(
            {
                "model": config.openai_model or model_path,
                "base_url": base_url.rstrip("/") + "/completions",
                "tokenizer": tokenizer,
                "tokenizer_backend": "huggingface" if tokenizer else None,
                "tokenized_requests": False,
                "num_concurrent": args.num_concurrent or 8,
                "max_retries": 3,
                "think_end_token": args.think_end_token,
            }
        )
    raise RefusedRun(f"unknown backend {backend!r}")


def _gen_kwargs(options: RunOptions) -> str | None:
    values = options.gen_kwargs.model_dump(exclude_none=True)
    return ",".join(f"{k}={v}" for k, v in values.items()) or None


def build(run: ClaimedRun, model_path: str, config: WorkerConfig, cache_path: Path | None = None) -> Invocation:
    """The lm-eval command for a claimed run (model, backend, tasks, options as the server sent them)."""
    if run["backend"] != config.backend:
        raise RefusedRun(f"run is for backend {run['backend']}, this worker runs {config.backend}")
    options = RunOptions.model_validate(run.get("options") or {})
    tasks = [check_task(task) for task in run["tasks"]]
    check_model_ref(run["model"])
    if options.model_args.trust_remote_code and not config.allow_trust_remote_code:
        raise RefusedRun("trust_remote_code is not allowed on this worker (--allow-trust-remote-code)")
    unsafe = sorted(set(tasks) & CODE_EXECUTING_TASKS)
    if unsafe and "sandboxed" not in config.labels:
        raise RefusedRun(f"{', '.join(unsafe)} execute model-written code: only sandboxed workers run them")
    if unscored := [task for task in unsafe if not sandboxed_scorer(task, config)]:
        raise RefusedRun(f"{', '.join(unscored)}: this worker has no sandboxed scorer for it; it would run unconfined")

    output_dir = config.work_dir / f"run-{run['run_id']}" / f"attempt-{run.get('attempt', 1)}"
    model, args = model_args(config.backend, model_path, options.model_args, config, bool(options.apply_chat_template))
    if rules := sharding(run, options, tasks):
        job = {
            "model": model,
            "model_args": args,
            "tasks": tasks,
            "num_fewshot": options.num_fewshot,
            "batch_size": options.batch_size or ("auto" if config.backend.startswith("vllm") else 1),
            "device": ("cuda" if config.devices else "cpu") if config.backend == "hf" else None,
            "apply_chat_template": options.apply_chat_template,
            "fewshot_as_multiturn": options.fewshot_as_multiturn,
            "gen_kwargs": _gen_kwargs(options),
            "include_path": None if config.include_path is None else str(config.include_path),
            "task_dirs": [SHARDED_TASKS[tasks[0]]],
            "rules": rules,
        }
        # beside the attempt's folder, which the evaluation empties when it starts
        job_path = output_dir.parent / f"attempt-{run.get('attempt', 1)}.job.json"
        job_path.parent.mkdir(parents=True, exist_ok=True)
        job_path.write_text(json.dumps(job, indent=2))
        argv = [config.python, "-m", "gate.checks.accuracy.sharded", str(job_path), str(output_dir)]
        return Invocation(argv=argv, env=environment(config), output_dir=output_dir)
    argv = [
        config.python,
        "-m",
        "lm_eval",
        "--model",
        model,
        "--model_args",
        args,
        "--tasks",
        ",".join(tasks),
        "--output_path",
        str(output_dir),
        "--log_samples",
    ]
    if options.num_fewshot is not None:
        argv += ["--num_fewshot", str(options.num_fewshot)]
    argv += ["--batch_size", str(options.batch_size or ("auto" if config.backend.startswith("vllm") else 1))]
    if config.backend == "hf":
        argv += ["--device", "cuda" if config.devices else "cpu"]
    if options.limit is not None:
        argv += ["--limit", str(options.limit)]
    if options.apply_chat_template:
        argv += ["--apply_chat_template"]
    if options.fewshot_as_multiturn is not None:
        argv += ["--fewshot_as_multiturn", str(options.fewshot_as_multiturn).lower()]
    if gen := _gen_kwargs(options):
        argv += ["--gen_kwargs", gen]
    if config.include_path is not None:
        argv += ["--include_path", str(config.include_path)]
    if cache_path is not None:
        argv += ["--use_cache", str(cache_path)]
    if unsafe:  # scored in gate.worker.sandbox (gate.checks.accuracy.code_eval), never by lm-eval's own code_eval
        argv += ["--confirm_run_unsafe_code"]
    return Invocation(argv=argv, env=environment(config), output_dir=output_dir)


def sandboxed_scorer(task: str, config: WorkerConfig) -> bool:
    """Whether the worker's task overrides score `task` in the sandbox (gate worker --label sandboxed writes them)."""
    override = None if config.include_path is None else config.include_path / f"{task}.yaml"
    return task in code_tasks.SANDBOXED and override is not None and override.is_file()


def sharding(run: ClaimedRun, options: RunOptions, tasks: list[str]) -> dict[str, Any] | None:
    """The stop rules when the sharded driver (gate.checks.accuracy.sharded) runs this evaluation, else None.

    It runs one GSM8K-like generate_until task that its baseline gates, over the whole test set. lm-eval's CLI
    runs the rest: several tasks or a group, `limit` (a smoke run), tasks the baseline does not gate, and
    code-executing tasks. A sharded run does not use the response cache."""
    rules = (run.get("rules") or {}).get(tasks[0]) if len(tasks) == 1 else None
    if rules is None or tasks[0] not in SHARDED_TASKS or options.limit is not None:
        return None
    return dict(rules)


def environment(config: WorkerConfig) -> dict[str, str]:
    env = {**OFFLINE_ENV, **config.extra_env}
    devices = ",".join(str(d) for d in config.devices)
    if config.backend == "vllm-ascend":
        env.update(ASCEND_ENV)
        if devices:
            env["ASCEND_RT_VISIBLE_DEVICES"] = devices
            env["VLLM_ASCEND_RT_DEVICES"] = devices
    elif config.backend in ("vllm", "hf") and devices:
        env["CUDA_VISIBLE_DEVICES"] = devices
    if config.backend == "hf" and not devices:
        env.setdefault("OMP_NUM_THREADS", "1")  # CPU generation is 5-20x slower and erratic with torch's default
    return env


def cache_key(model_fingerprint: str, backend: str, device_kind: str, options: RunOptions) -> str:
    """lm-eval's response cache is keyed on the prompt alone: one cache per model content (its fingerprint, never
    its path), backend, device kind, model arguments and batch size. Every model argument counts: dtype and
    tensor parallelism change the numbers, and so does batching (memory utilisation, batch size)."""
    answers_depend_on = {
        "model": model_fingerprint,
        "backend": backend,
        "device": device_kind,
        "model_args": options.model_args.model_dump(exclude_none=True),
        "batch_size": options.batch_size,
    }
    return hashlib.sha256(json.dumps(answers_depend_on, sort_keys=True).encode()).hexdigest()[:16]
