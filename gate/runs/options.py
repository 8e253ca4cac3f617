"""Run options: what a submitter may ask of lm-eval, validated before it gets near a command line.

lm-eval splits `--model_args` on "," and "=", so no value may contain either; everything else that reaches the
command line is typed here. Options that run code (trust_remote_code, code-executing tasks) need an admin's grant.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BACKENDS = ("vllm", "vllm-ascend", "hf", "openai")
Backend = Literal["vllm", "vllm-ascend", "hf", "openai"]
TASK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-.]{0,199}$")
# A model reference: hub id (org/name), ModelScope id, or an absolute/relative local path.
MODEL_REF = re.compile(r"^[A-Za-z0-9_./~\-][A-Za-z0-9_./~\-+:@]{0,499}$")
SAFE_VALUE = re.compile(r"^[^,=\s]{1,200}$")
# Postgres text cannot hold NUL, and no name, task or URL gate stores or looks up needs a control character.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Tasks whose scoring executes model-written code (lm-eval's --confirm_run_unsafe_code).
CODE_EXECUTING_TASKS = frozenset({"humaneval", "humaneval_plus", "mbpp", "mbpp_plus", "humaneval_instruct"})


def check_model_ref(value: str) -> str:
    if not MODEL_REF.match(value) or ".." in value.split("/"):
        raise ValueError("model must be a hub or ModelScope id (org/name) or a path, without spaces, ',' or '='")
    return value


def check_task(value: str) -> str:
    if not TASK_NAME.match(value):
        raise ValueError(f"task {value!r} is not a valid lm-eval task name")
    return value


class ModelArgs(BaseModel):
    """Backend model arguments gate passes to lm-eval's --model_args."""

    model_config = ConfigDict(extra="forbid")

    dtype: Literal["auto", "float16", "bfloat16", "float32"] | None = None
    tensor_parallel_size: int | None = Field(default=None, ge=1, le=64)
    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    max_model_len: int | None = Field(default=None, ge=16, le=1_048_576)
    enforce_eager: bool | None = None
    trust_remote_code: bool | None = None
    revision: str | None = None
    enable_thinking: bool | None = None
    think_end_token: str | None = None
    # openai backend: the server is the worker's own (--openai-base-url); a run never names an address a worker
    # would connect to.
    num_concurrent: int | None = Field(default=None, ge=1, le=256)
    tokenizer: str | None = None

    @field_validator("revision", "think_end_token", "tokenizer")
    @classmethod
    def _safe(cls, value: str | None) -> str | None:
        if value is not None and not SAFE_VALUE.match(value):
            raise ValueError("must not contain ',', '=' or whitespace")
        return value


class GenKwargs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_gen_toks: int | None = Field(default=None, ge=1, le=131072)
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, le=100000)
    do_sample: bool | None = None


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str | None = Field(default=None, description="a named option set, e.g. qwen3-thinking")
    num_fewshot: int | None = Field(default=None, ge=0, le=64)
    batch_size: int | Literal["auto"] | None = None
    limit: int | None = Field(default=None, ge=1, description="smoke runs only: such runs get no pass/fail")
    apply_chat_template: bool | None = None
    fewshot_as_multiturn: bool | None = None
    gen_kwargs: GenKwargs = Field(default_factory=GenKwargs)
    model_args: ModelArgs = Field(default_factory=ModelArgs)
    time_limit_s: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 1 <= value <= 4096:
            raise ValueError("batch_size must be between 1 and 4096 or 'auto'")
        return value


# Named option sets. Thinking models emit a reasoning block first: lm-eval's default 256 tokens cut it off
# and strict-match then finds nothing, so the profile raises the cap and strips the block before filtering.
PROFILES: dict[str, RunOptions] = {
    "qwen3-thinking": RunOptions(
        apply_chat_template=True,
        fewshot_as_multiturn=True,
        gen_kwargs=GenKwargs(max_gen_toks=32768, temperature=0.0, do_sample=False),
        model_args=ModelArgs(enable_thinking=True, think_end_token="</think>", max_model_len=40960),
    ),
}


def resolve(options: RunOptions) -> RunOptions:
    """Options with their named profile filled in underneath (explicit values win)."""
    if options.profile is None:
        return options
    if options.profile not in PROFILES:
        raise ValueError(f"unknown profile {options.profile!r}; known: {', '.join(sorted(PROFILES))}")
    base = PROFILES[options.profile].model_dump(exclude_none=True)
    mine = options.model_dump(exclude_none=True)
    for section in ("gen_kwargs", "model_args"):
        base[section] = {**base.get(section, {}), **mine.pop(section, {})}
    return RunOptions.model_validate({**base, **mine})
