"""Run shapes for the API. Routes return these, never ORM objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Row

from gate.checks.accuracy import profile
from gate.runs import options as opts
from gate.runs.models import Run, Worker
from gate.runs.options import CONTROL

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
# a run as the schemas read it: an entity, a row of queries.RUN_ROWS, or an import's values as just written
RunLike = Run | Row[Any] | SimpleNamespace
MODEL_FINGERPRINT = r"^[0-9a-f]{64}$"  # gate.worker.fingerprint's digest: blake3, lowercase hex
VerdictName = Literal["pass", "fail", "not_comparable"]


def _plain(value: str) -> str:
    # Postgres text cannot hold NUL, and no name or URL gate stores needs a control character
    if CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


PlainText = Annotated[str, AfterValidator(_plain)]


def check_labels(value: list[str]) -> list[str]:
    """Labels a worker must carry to claim a run."""
    for label in value:
        if not opts.SAFE_VALUE.match(label) or len(label) > 64:
            raise ValueError(f"label {label!r} must be 1-64 characters without ',', '=' or spaces")
    return value


class CIContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository: PlainText | None = Field(default=None, max_length=300)
    commit: PlainText | None = Field(default=None, max_length=100)
    branch: PlainText | None = Field(default=None, max_length=300)
    pipeline_url: PlainText | None = Field(default=None, max_length=1000)
    provider: PlainText | None = Field(default=None, max_length=50)


class CheckCreate(BaseModel):
    """What every check kind's submission carries beside its own spec (alignment, serving...)."""

    model_config = ConfigDict(extra="forbid")

    baseline: PlainText | None = Field(default=None, max_length=200)
    labels: list[str] = Field(default_factory=list, max_length=16)
    priority: int = Field(default=0, ge=-100, le=100)
    ci: CIContext | None = None
    idempotency_key: PlainText | None = Field(default=None, max_length=200)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return check_labels(value)


class ReportUpload(BaseModel):
    """A worker's report for its lease, for the kinds whose result is one JSON report."""

    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100)
    report: dict[str, Any]
    environment: dict[str, Any] = Field(default_factory=dict)
    log_tail: str | None = Field(default=None, max_length=200_000)
    model_fingerprint: str | None = Field(default=None, pattern=MODEL_FINGERPRINT)


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="hub or ModelScope id, or a path on the worker", examples=["Qwen/Qwen3-4B-Thinking-2507"]
    )
    baseline: PlainText | None = Field(default=None, max_length=200, examples=["qwen3-4b-thinking-2507"])
    tasks: list[str] = Field(default_factory=lambda: ["gsm8k"], min_length=1, max_length=32)
    backend: opts.Backend = "vllm"
    labels: list[str] = Field(default_factory=list, max_length=16)
    priority: int = Field(default=0, ge=-100, le=100)
    options: opts.RunOptions = Field(default_factory=opts.RunOptions)
    ci: CIContext | None = None
    callback_url: PlainText | None = Field(default=None, max_length=2000, description="notified when the run ends")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        return opts.check_model_ref(value)

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: list[str]) -> list[str]:
        return [opts.check_task(task) for task in value]

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return check_labels(value)


class ScoreOut(BaseModel):
    task: str
    metric: str
    value: float
    stderr: float | None
    n_samples: int | None


class VerdictOut(BaseModel):
    task: str
    outcome: VerdictName
    delta_pp: float
    details: dict[str, Any]


class RunOut(BaseModel):
    id: int
    kind: str
    model: str
    backend: str
    tasks: list[str]
    status: Status
    verdict: VerdictName | None
    baseline: str | None
    origin: str
    labels: list[str]
    priority: int
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: dict[str, int | None]
    failure_reason: str | None
    model_fingerprint: str | None = Field(description="blake3 of the model files the worker evaluated")
    url: str

    @classmethod
    def of(cls, run: RunLike) -> RunOut:
        return cls(**cls.fields(run))

    @staticmethod
    def fields(run: RunLike) -> dict[str, Any]:
        return dict(
            id=run.id,
            kind=run.kind,
            model=run.model,
            backend=run.backend,
            tasks=run.tasks,
            status=cast(Status, run.status),  # the columns hold these words; pydantic checks them again
            verdict=cast(VerdictName | None, run.verdict),
            baseline=run.baseline_name,
            origin=run.origin,
            labels=run.labels,
            priority=run.priority,
            attempts=run.attempts,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            progress={"done": run.progress_done, "total": run.progress_total},
            failure_reason=run.failure_reason,
            model_fingerprint=run.model_fingerprint,
            url=f"/api/v1/runs/{run.id}",
        )


class RunDetail(RunOut):
    options: dict[str, Any]
    scores: list[ScoreOut]
    verdicts: list[VerdictOut]
    verdict_reason: str | None  # why the verdict is not comparable when no task verdict says (nothing gated)
    gated_tasks: list[str]  # tasks judged against the baseline (one verdict each)
    not_gated_tasks: list[str]  # the run's other top-level tasks: scored and stored, not judged
    eval_profile: dict[str, Any] | None
    generation: dict[str, Any] | None
    environment: dict[str, Any] | None
    ci: dict[str, Any] | None
    submitted_by: str | None
    failure_kind: str | None
    log_tail: str | None
    # a sharded run's running estimate: {total, points: [[answered, right, low, high], ...]} (gate.verdicts.trail)
    estimate: dict[str, Any] | None
    files: list[str]

    @classmethod
    def full(cls, run: Run, files: list[str]) -> RunDetail:
        return cls.build(run, run.scores, run.verdicts, files)

    @classmethod
    def build(cls, run: RunLike, scores: Sequence[Any], verdicts: Sequence[Any], files: list[str]) -> RunDetail:
        """From entities or from rows (queries.run_row, score_rows, verdict_rows): the same attributes."""
        return cls(
            **RunOut.fields(run),
            options=run.options,
            scores=[
                ScoreOut(task=s.task, metric=s.metric, value=s.value, stderr=s.stderr, n_samples=s.n_samples)
                for s in scores
            ],
            verdicts=[
                VerdictOut(task=v.task, outcome=cast(VerdictName, v.outcome), delta_pp=v.delta_pp, details=v.details)
                for v in verdicts
            ],
            verdict_reason=run.verdict_reason,
            gated_tasks=[v.task for v in verdicts],
            not_gated_tasks=profile.not_gated(run.eval_profile or {}, [v.task for v in verdicts]),
            eval_profile=run.eval_profile,
            generation=run.generation_stats,
            environment=run.environment,
            ci=run.ci_context,
            submitted_by=run.submitted_by,
            failure_kind=run.failure_kind,
            log_tail=run.log_tail,
            estimate=run.estimate,
            files=files,
        )


class RunPage(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None


class WorkerOut(BaseModel):
    name: str
    labels: list[str]
    backend: str
    draining: bool
    last_seen_at: datetime

    @classmethod
    def of(cls, w: Worker) -> WorkerOut:
        return cls(name=w.name, labels=w.labels, backend=w.backend, draining=w.draining, last_seen_at=w.last_seen_at)
