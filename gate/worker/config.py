"""What a worker is told: its own configuration, and a run as the server hands it over."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict


class ClaimedRun(TypedDict):
    """A run as the server hands it to a worker (`POST /workers/claim`); options are validated again here."""

    run_id: int
    kind: str  # gate.checks.KINDS: which part of the worker executes it
    lease: str  # this attempt's lease token: every write carries it
    lease_expires_at: str
    lease_s: float  # the lease the server granted: renewals and fencing fit inside it
    attempt: int
    model: str
    backend: str
    tasks: list[str]
    options: dict[str, Any]
    rules: NotRequired[dict[str, dict[str, Any]]]  # per gated task: the baseline's band, for early stops


@dataclass(frozen=True)
class WorkerConfig:
    backend: str
    labels: tuple[str, ...] = ()
    devices: tuple[int, ...] = ()
    work_dir: Path = Path(".gate-worker")
    include_path: Path | None = None  # lm-eval task overrides: --local-data's, or set per run from dataset_mirror
    dataset_mirror: Path | None = None  # datasets as the hub's client writes them: MIRROR/ORG/NAME (--dataset-mirror)
    allow_trust_remote_code: bool = False
    openai_base_url: str | None = None  # the running OpenAI-compatible server (backend openai)
    openai_model: str | None = None
    openai_tokenizer: str | None = None
    python: str = sys.executable
    warm_engine: bool = False  # backends vllm and vllm-ascend: keep one server alive across runs (gate.worker.warm)
    warm_idle_s: float = 600.0  # stop the warm engine after this long without a run
    warm_base_url: str | None = None  # set per run: the warm server (http://127.0.0.1:PORT) the run's checks use
    warm_log: Path | None = None  # set per run: that server's log, from its start (its start-up figures)
    extra_env: dict[str, str] = field(default_factory=dict)
