"""The lm-eval invocations workers build: exact argument lists and environments, and what they refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.checks.accuracy.command import RefusedRun, build, cache_key
from gate.checks.accuracy.datasets import write_overrides
from gate.runs.options import RunOptions, resolve
from gate.worker.agent import classify
from gate.worker.config import WorkerConfig

PY = "/venv/bin/python"


def run(backend: str, **options: object) -> dict:
    return {
        "run_id": 7,
        "attempt": 1,
        "model": "/models/qwen3-4b-thinking-2507-npu",
        "backend": backend,
        "tasks": ["gsm8k"],
        "options": options,
    }


def test_vllm_ascend_matches_the_model_card() -> None:
    config = WorkerConfig(
        backend="vllm-ascend",
        labels=("ascend910b",),
        devices=(0, 1),
        work_dir=Path("/w"),
        include_path=Path("/w/tasks"),
        python=PY,
    )
    options = resolve(
        RunOptions.model_validate(
            {"profile": "qwen3-thinking", "num_fewshot": 5, "model_args": {"tensor_parallel_size": 2}}
        )
    )
    invocation = build(
        run("vllm-ascend", **options.model_dump(exclude_none=True)), "/models/q", config, Path("/w/cache/abc/responses")
    )
    assert invocation.argv == [
        PY,
        "-m",
        "lm_eval",
        "--model",
        "vllm",
        "--model_args",
        "pretrained=/models/q,tensor_parallel_size=2,dtype=bfloat16,gpu_memory_utilization=0.9,max_model_len=40960,"
        "enforce_eager=True,enable_thinking=True,think_end_token=</think>",
        "--tasks",
        "gsm8k",
        "--output_path",
        "/w/run-7/attempt-1",
        "--log_samples",
        "--num_fewshot",
        "5",
        "--batch_size",
        "auto",
        "--apply_chat_template",
        "--fewshot_as_multiturn",
        "true",
        "--gen_kwargs",
        "max_gen_toks=32768,temperature=0.0,do_sample=False",
        "--include_path",
        "/w/tasks",
        "--use_cache",
        "/w/cache/abc/responses",
    ]
    assert invocation.env == {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TASK_QUEUE_ENABLE": "1",
        "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True",
        "ASCEND_RT_VISIBLE_DEVICES": "0,1",
        "VLLM_ASCEND_RT_DEVICES": "0,1",
    }


def test_vllm_on_gpus() -> None:
    config = WorkerConfig(backend="vllm", devices=(3,), work_dir=Path("/w"), python=PY)
    invocation = build(
        run("vllm", num_fewshot=5, model_args={"dtype": "bfloat16", "max_model_len": 4096}), "/m", config
    )
    assert invocation.argv[3:6] == ["--model", "vllm", "--model_args"]
    assert (
        invocation.argv[6]
        == "pretrained=/m,tensor_parallel_size=1,dtype=bfloat16,gpu_memory_utilization=0.9,max_model_len=4096"
    )
    assert invocation.env["CUDA_VISIBLE_DEVICES"] == "3" and "TASK_QUEUE_ENABLE" not in invocation.env


def test_openai_server_backend() -> None:
    config = WorkerConfig(
        backend="openai",
        work_dir=Path("/w"),
        python=PY,
        openai_base_url="http://10.0.0.5:8000/v1",
        openai_model="qwen",
        openai_tokenizer="/tok",
    )
    argv = build(run("openai", num_fewshot=5, limit=10), "ignored", config).argv
    assert argv[4:7] == [
        "local-completions",
        "--model_args",
        "model=qwen,base_url=http://10.0.0.5:8000/v1/completions,tokenizer=/tok,"
        "tokenizer_backend=huggingface,tokenized_requests=False,num_concurrent=8,max_retries=3",
    ]
    assert argv[argv.index("--limit") + 1] == "10"


def test_hf_on_cpu() -> None:
    invocation = build(run("hf", batch_size=4), "/m", WorkerConfig(backend="hf", work_dir=Path("/w"), python=PY))
    assert invocation.argv[6] == "pretrained=/m,dtype=auto"
    assert invocation.argv[invocation.argv.index("--device") + 1] == "cpu"
    assert invocation.env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize(
    ("claimed", "config", "message"),
    [
        (run("hf", model_args={"trust_remote_code": True}), WorkerConfig(backend="hf"), "trust_remote_code"),
        ({**run("hf"), "tasks": ["humaneval"]}, WorkerConfig(backend="hf"), "sandboxed"),
        (run("vllm"), WorkerConfig(backend="hf"), "backend"),
        (run("openai"), WorkerConfig(backend="openai"), "needs a server"),
        ({**run("hf"), "model": "m,trust_remote_code=True"}, WorkerConfig(backend="hf"), "model"),
        (run("hf", model_args={"think_end_token": "a,b"}), WorkerConfig(backend="hf"), "think_end_token"),
    ],
)
def test_refusals(claimed: dict, config: WorkerConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(claimed, claimed["model"], config)


def test_code_tasks_run_on_sandboxed_workers_with_the_flag(tmp_path: Path) -> None:
    """The flag goes with the worker's own scorer: a sandboxed worker's overrides (gate worker --label sandboxed)."""
    include_path = write_overrides({}, tmp_path / "tasks", tmp_path / "mirror", sandboxed=True).include_path
    config = WorkerConfig(backend="hf", labels=("sandboxed",), include_path=include_path, python=PY)
    argv = build({**run("hf"), "tasks": ["humaneval"]}, "/m", config).argv
    assert argv[-1] == "--confirm_run_unsafe_code"
    assert argv[argv.index("--include_path") + 1] == str(include_path)
    assert "--confirm_run_unsafe_code" not in build(run("hf"), "/m", config).argv


@pytest.mark.parametrize(
    ("tasks", "include_path"),
    [(["humaneval"], None), (["mbpp"], "written"), (["gsm8k", "humaneval_plus"], "written")],
    ids=["no-scorer-written", "mbpp", "humaneval_plus"],
)
def test_a_code_task_without_a_sandboxed_scorer_is_refused(
    tasks: list[str], include_path: str | None, tmp_path: Path
) -> None:
    """A sandboxed worker never lets lm-eval's own code_eval run a program: a task gate cannot score is refused."""
    written = write_overrides({}, tmp_path / "tasks", tmp_path / "mirror", True).include_path if include_path else None
    config = WorkerConfig(backend="hf", labels=("sandboxed",), include_path=written, python=PY)
    with pytest.raises(RefusedRun, match="no sandboxed scorer") as refused:
        build({**run("hf"), "tasks": tasks}, "/m", config)
    assert str(refused.value).count(".") <= 1  # one sentence


def test_cache_is_per_model_content_backend_device_and_model_args() -> None:
    a, b = "a" * 64, "b" * 64
    plain = RunOptions()
    base = cache_key(a, "vllm", "cuda", plain)
    variants = {
        base,
        cache_key(b, "vllm", "cuda", plain),
        cache_key(a, "vllm-ascend", "cuda", plain),
        cache_key(a, "vllm", "npu", plain),
        cache_key(a, "vllm", "cuda", RunOptions.model_validate({"model_args": {"dtype": "float16"}})),
        cache_key(a, "vllm", "cuda", RunOptions.model_validate({"model_args": {"tensor_parallel_size": 2}})),
        cache_key(a, "vllm", "cuda", RunOptions.model_validate({"batch_size": 8})),
    }
    assert len(variants) == 7
    # the same content and settings share a cache; options that do not reach the model do not split it
    assert base == cache_key(a, "vllm", "cuda", RunOptions.model_validate({"limit": 5, "num_fewshot": 3}))


def test_failure_classes() -> None:
    assert classify(-9, "") == "infrastructure"
    assert classify(1, "torch.OutOfMemoryError: CUDA out of memory") == "infrastructure"
    assert classify(1, "RuntimeError: NPU out of memory. Tried to allocate") == "infrastructure"
    assert classify(1, "OSError: /models/x is not a local folder and is not a valid model identifier") == "user"
    assert classify(2, "lm_eval: error: argument --num_fewshot: invalid int value") == "user"
