"""Serving routes: submit a benchmark, read its report, and the worker's upload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gate.auth.deps import Reader, Submitter, WorkerAuth
from gate.baselines import service as baselines
from gate.checks.serving import recording, spec
from gate.checks.serving.schemas import ServingCreate, ServingOut
from gate.deps import RunId, SessionDep, SettingsDep
from gate.errors import Forbidden, InvalidInput
from gate.runs import queries
from gate.runs import service as runs
from gate.runs.schemas import MODEL_FINGERPRINT, RunDetail, RunOut

router = APIRouter(tags=["serving"])


class ServingUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease: str = Field(min_length=1, max_length=100)
    report: dict[str, Any]
    environment: dict[str, Any] = Field(default_factory=dict)
    log_tail: str | None = Field(default=None, max_length=200_000)
    model_fingerprint: str | None = Field(default=None, pattern=MODEL_FINGERPRINT)


@router.post("/serving/runs", status_code=status.HTTP_201_CREATED, response_model=RunDetail)
def submit(
    body: ServingCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunDetail:
    """Queue a serving benchmark. A repeated idempotency key (in the body or the `Idempotency-Key` header) returns
    the run it created (200)."""
    try:
        checked = spec.check(body.spec())
    except ValueError as exc:
        raise InvalidInput(str(exc), field="spec") from None
    if not principal.admin and checked["engine_args"].get("trust_remote_code"):
        raise Forbidden("trust_remote_code needs an admin token")
    # what cannot judge refuses the run now, not when its report arrives: bad settings, a reference that is none
    limits = recording.thresholds(baselines.get(session, body.baseline) if body.baseline is not None else None)
    ref_id = recording.reference_run(checked, limits)
    if ref_id is not None:
        recording.reference(session, ref_id)
    request = runs.RunRequest(
        kind=recording.KIND,
        model=checked["model"],
        tasks=[],
        backend=checked["backend"],
        baseline=body.baseline,
        labels=body.labels,
        priority=body.priority,
        options=checked,
        ci_context=body.ci.model_dump(exclude_none=True) if body.ci else None,
    )
    run, created = runs.submit(
        session,
        request,
        submitted_by=principal.name,
        admin=principal.admin,
        max_attempts=settings.max_attempts,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return RunDetail.full(run, queries.artifact_names(session, run.id))


@router.get("/runs/{run_id}/serving", response_model=ServingOut)
def get_serving(run_id: RunId, session: SessionDep, _: Reader) -> ServingOut:
    """The benchmark's figures per level and round, the server's log figures, and the verdict against the reference."""
    return ServingOut.of(recording.stored(session, run_id))


@router.post("/workers/runs/{run_id}/serving", response_model=RunOut)
def upload(run_id: RunId, body: ServingUpload, session: SessionDep, _: WorkerAuth) -> RunOut:
    """A worker's benchmark report for its lease: checked, judged on the server, stored. Idempotent on replay."""
    run = recording.record(
        session, run_id, body.lease, body.report, body.environment, body.log_tail, body.model_fingerprint
    )
    return RunOut.of(run)
